"""transcribe speed and memory: real-time factor and peak RSS of a trained model and model
presets on short files and a long recording, with PocketSphinx on the same audio.

``--data`` is a scored data directory (e.g. the digits recipe's ``data/test``); ``--model``
defaults to the model ``transcribe`` would use (``$ASR_MODEL``, else the store's default).

Every row runs in a fresh Python process, so that its peak resident memory (``ru_maxrss``) is
its own. Timed: ``Recognizer.transcribe_files`` over the test files (reading, resampling,
features, network, greedy search, words) and ``Recognizer.transcribe`` over one long
recording built by concatenating the same test files (chunked: ``--chunk-length`` seconds),
after a warm-up batch of the test files; model loading is not timed. CPU rows run with each of ``--threads``
(one thread often wins on a busy machine). Untrained preset models (``--presets``)
have the trained models' speed, the work per frame being the same; they have no WER.
PocketSphinx (``pip install -e '.[bench]'``) decodes the same files at 16 kHz with its US
English model twice: its general LM, and a digit-loop JSGF grammar (the fair comparison with a
digits model); its RTF includes reading the audio, like ours.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIGIT_WORDS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model",
                        help="trained model directory or name (default: $ASR_MODEL, else the "
                        "default installed model, as for transcribe)")
    parser.add_argument("--data", required=True,
                        help="scored data directory whose wav.scp holds plain paths, e.g. "
                        "recipes/digits/data/test")
    parser.add_argument("--max-utts", type=int, default=50,
                        help="first N utterances of --data (default 50; 0: all)")
    parser.add_argument("--presets", default="model/ctc_5l_250h,largest",
                        help="untrained model presets to time, comma-separated preset names or "
                        "YAML paths; 'largest' is the model preset with the most weights "
                        "(default: model/ctc_5l_250h and the largest)")
    parser.add_argument("--long-minutes", type=float, default=10.0,
                        help="length of the long recording (default 10; 60 for the 1-hour figure)")
    parser.add_argument("--chunk-length", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--batch-size", type=int, default=8, help="files or chunks per pass")
    parser.add_argument("--devices", default="cpu,cuda",
                        help="devices to time (default cpu,cuda; cuda rows need CUDA)")
    parser.add_argument("--threads", default="1,2",
                        help="CPU thread counts to time, comma-separated (default 1,2; 0: "
                        "PyTorch's choice); GPU rows run once")
    parser.add_argument("--no-pocketsphinx", action="store_true", help="skip PocketSphinx")
    parser.add_argument("--an4", default=os.environ.get("AN4_DIR") or None,
                        help="CMU AN4 corpus: PocketSphinx also runs on its 16 kHz test set with "
                        "AN4's LM and dictionary, its own ground (default: $AN4_DIR, else no "
                        "AN4 row)")
    parser.add_argument("--json", help="also write the rows to this JSON file")


# -- worker side: one measurement in its own process ---------------------------------------------


def _worker(spec: dict) -> dict:
    import resource

    if spec["kind"] == "pocketsphinx":
        out = _pocketsphinx(spec)
    else:
        out = _ours(spec)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _ours(spec: dict) -> dict:
    import torch

    from asr.inference import load_model

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    recognizer = load_model(spec["model"], device=spec["device"])
    # Warm-up: one batch of the shapes to come (oneDNN builds its kernels per shape).
    warm = spec["files"] if spec["kind"] == "files" else spec.get("warmup", spec["files"])
    list(recognizer.transcribe_files(warm[: spec["batch_size"]], batch_size=spec["batch_size"]))
    cuda = recognizer.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if spec["kind"] == "files":
        texts = [r.text if not isinstance(r, Exception) else ""
                 for _, r in recognizer.transcribe_files(spec["files"],
                                                         batch_size=spec["batch_size"],
                                                         chunk_length=spec["chunk_length"])]
    else:
        texts = [recognizer.transcribe(spec["files"][0], chunk_length=spec["chunk_length"],
                                       batch_size=spec["batch_size"]).text]
    if cuda:
        torch.cuda.synchronize()
    out = {"seconds": time.perf_counter() - start, "texts": texts,
           "threads": torch.get_num_threads()}
    if cuda:
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _pocketsphinx(spec: dict) -> dict:
    import numpy as np
    from pocketsphinx import Decoder

    from asr.audio import load_audio

    decoder = Decoder(loglevel="FATAL", **spec.get("options", {}))
    if spec.get("grammar"):
        words = " | ".join(w for w in DIGIT_WORDS if w != "oh")
        decoder.add_jsgf_string("digits", f"#JSGF V1.0;\ngrammar digits;\npublic <d> = ( {words} )+ ;\n")
        decoder.activate_search("digits")
    texts = []
    start = time.perf_counter()
    for path in spec["files"]:
        signal, _ = load_audio(path, 16000)
        pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        texts.append(hyp.hypstr if hyp is not None else "")
    return {"seconds": time.perf_counter() - start, "texts": texts}


# -- driver side ----------------------------------------------------------------------------------


def _measure(spec: dict) -> dict:
    """Run one measurement in a fresh interpreter; its JSON result."""
    code = "import json,sys; from asr.benchmarks.transcribe import _worker; " \
           "print(json.dumps(_worker(json.loads(sys.stdin.read()))))"
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(spec), text=True,
                          capture_output=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _preset_paths(spec: str) -> list[Path]:
    from asr.config import load_config
    from asr.model import build_model
    from asr.model.params import count_parameters
    from asr.presets import list_presets, preset_path, resolve_config

    out: list[Path] = []
    for item in (part.strip() for part in spec.split(",") if part.strip()):
        if item == "largest":
            sizes = {}
            for path in (preset_path("model", name) for name in list_presets()["model"]):
                config = load_config([path])
                sizes[path] = count_parameters(build_model(config.model, config.features, 30))
            path = max(sizes, key=lambda p: sizes[p])
        else:
            path = resolve_config(item)
        if path.resolve() not in [p.resolve() for p in out]:
            out.append(path)
    return out


def _preset_model(preset: Path, trained: Path, out: Path) -> Path:
    """An untrained model of ``preset`` with the trained model's features and tokens."""
    import torch

    from asr.config import load_config
    from asr.model import build_model
    from asr.modeldir import load_model_dir, save_model_dir

    base = load_model_dir(trained)
    config = load_config([preset])
    config.features = base.config.features
    config.tokenizer = base.config.tokenizer
    torch.manual_seed(0)
    model = build_model(config.model, config.features, len(base.tokenizer)).eval()
    model.normalizer.set_stats(base.model.normalizer.mean, base.model.normalizer.std)
    return save_model_dir(out / preset.stem, model, config, base.tokenizer)


def _long_recording(files: list[str], minutes: float, rate: int, path: Path) -> float:
    """Concatenate ``files`` (with 0.3 s pauses) until ``minutes`` long; write at ``rate``."""
    import numpy as np
    import soundfile as sf

    from asr.audio import load_audio

    total = int(minutes * 60 * rate)
    written = 0
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as handle:
        while written < total:
            for name in files:
                signal, _ = load_audio(name, rate)
                part = np.concatenate([signal, np.zeros(int(0.3 * rate), np.float32)])
                part = part[: total - written]
                handle.write(part)
                written += len(part)
                if written >= total:
                    break
    return written / rate


def _wer(refs: list[str], hyps: list[str]) -> float:
    import jiwer

    return 100.0 * jiwer.wer(refs, [h if h.strip() else "<empty>" for h in hyps])


def run(args: argparse.Namespace) -> int:
    import torch

    from asr.audio import audio_duration
    from asr.data import read_data_dir
    from asr.errors import AsrError
    from asr.modeldir import load_model_dir
    from asr.store import resolve
    from asr.utils import atomic_write_text

    trained = resolve(args.model)
    data = read_data_dir(args.data, require_text=True)
    utts = data.utterances[: args.max_utts] if args.max_utts > 0 else data.utterances
    files = [u.wav for u in utts]
    if not files or not all(u.segment is None and Path(u.wav).is_file() for u in utts):
        raise AsrError(f"{args.data}/wav.scp: the benchmark needs plain file paths, one "
                       "recording per utterance")
    refs = [u.text for u in utts]
    rate = load_model_dir(trained).config.features.sample_rate
    audio = sum(audio_duration(f) for f in files)
    devices = [d for d in args.devices.split(",") if d]
    have_cuda = torch.cuda.is_available()
    tmp = tempfile.TemporaryDirectory(prefix="bench-transcribe.")
    long_path = Path(tmp.name) / "long.wav"
    long_seconds = _long_recording(files, args.long_minutes, rate, long_path)
    # A recipe's model is EXP/final: the experiment's name says more than "final".
    label = trained.parent.name if trained.name == "final" else trained.name
    models = [(f"{label} (trained)", trained)]
    for preset in _preset_paths(args.presets):
        models.append((f"{preset.stem} (untrained)", _preset_model(preset, trained, Path(tmp.name))))

    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()] or [0]
    rows: list[dict] = []
    for name, path in models:
        params = sum(p.numel() for p in load_model_dir(path).model.parameters())
        for device in devices:
            for kind, inputs, seconds in (("files", files, audio),
                                          ("long", [str(long_path)], long_seconds)):
                for threads in thread_counts if device == "cpu" else [0]:
                    row = {"system": name, "params": params, "device": device, "input": kind,
                           "audio_s": round(seconds, 1)}
                    if device.startswith("cuda") and not have_cuda:
                        rows.append(row | {"note": "n/a (no CUDA)"})
                        continue
                    spec = {"kind": kind, "model": str(path), "device": device, "files": inputs,
                            "batch_size": args.batch_size, "chunk_length": args.chunk_length,
                            "threads": threads, "warmup": files}
                    rows.append(_ours_row(row, spec, seconds, refs))
                    _print_row(rows[-1])
    if not args.no_pocketsphinx:
        for label, grammar in (("PocketSphinx en-us, general LM", False),
                               ("PocketSphinx en-us, digit grammar", True)):
            row = {"system": label, "params": None, "device": "cpu", "input": "files",
                   "audio_s": round(audio, 1)}
            out = _measure({"kind": "pocketsphinx", "files": files, "grammar": grammar})
            if "error" in out:
                rows.append(row | {"note": out["error"]})
            else:
                rows.append(row | {"rtf": out["seconds"] / audio, "peak_rss_mb": out["peak_rss_mb"],
                                   "wer": _wer(refs, [t.lower() for t in out["texts"]])})
            _print_row(rows[-1])
        if args.an4:
            rows.append(_an4_row(Path(args.an4), args.max_utts))
            _print_row(rows[-1])
    print(_table(rows, args, len(files), audio, long_seconds))
    if args.json:
        atomic_write_text(args.json, json.dumps({"rows": rows, "host": _host()}, indent=2) + "\n")
    tmp.cleanup()
    return 0


def _ours_row(row: dict, spec: dict, seconds: float, refs: list[str]) -> dict:
    out = _measure(spec)
    if "error" in out:
        return row | {"note": out["error"]}
    row = row | {"rtf": out["seconds"] / seconds, "peak_rss_mb": out["peak_rss_mb"],
                 "gpu_peak_mb": out.get("gpu_peak_mb"),
                 "threads": out.get("threads") if spec["device"] == "cpu" else None}
    if spec["kind"] == "files" and "untrained" not in row["system"]:
        row["wer"] = _wer(refs, out["texts"])
    return row


def _an4_row(root: Path, max_utts: int) -> dict:
    """PocketSphinx on AN4 test with AN4's LM and dictionary (16 kHz, its home ground)."""
    ids = (root / "etc" / "an4_test.fileids").read_text().split()
    lines = (root / "etc" / "an4_test.transcription").read_text().splitlines()
    refs = [line.rsplit("(", 1)[0].replace("<s>", "").replace("</s>", "").strip().lower()
            for line in lines if line.strip()]
    if max_utts > 0:
        ids, refs = ids[:max_utts], refs[:max_utts]
    files = [str(root / "wav" / f"{i}.wav") for i in ids]
    from asr.audio import audio_duration

    audio = sum(audio_duration(f) for f in files)
    row = {"system": "PocketSphinx en-us, AN4 LM + dictionary (AN4 test)", "params": None,
           "device": "cpu", "input": "AN4 files", "audio_s": round(audio, 1)}
    out = _measure({"kind": "pocketsphinx", "files": files, "options": {
        "lm": str(root / "etc" / "an4.lm"), "dict": str(root / "etc" / "an4.dic")}})
    if "error" in out:
        return row | {"note": out["error"]}
    return row | {"rtf": out["seconds"] / audio, "peak_rss_mb": out["peak_rss_mb"],
                  "wer": _wer(refs, [t.lower() for t in out["texts"]])}


def _print_row(row: dict) -> None:
    print(f"# {row['system']} {row['device']} threads={row.get('threads') or '-'} {row['input']}: "
          f"RTF {row.get('rtf', float('nan')):.4f} peak RSS {row.get('peak_rss_mb', 0):.0f} MB "
          f"{row.get('note', '')}", file=sys.stderr, flush=True)


def _host() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_avg": [round(x, 2) for x in load], "python": platform.python_version()}


def _table(rows: list[dict], args: argparse.Namespace, n_files: int, audio: float,
           long_seconds: float) -> str:
    host = _host()
    lines = [
        f"## transcribe: {n_files} files of {args.data} ({audio:.0f} s) and one "
        f"{long_seconds / 60:.0f}-minute recording (chunks of {args.chunk_length:g} s)",
        f"host: {host['cores']} cores, load average {host['load_avg']}; "
        "untrained presets have the trained models' speed",
        "",
        "| system | weights | device | threads | input | RTF | peak RSS (MB) | GPU peak (MB) | WER % |",
        "|---|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        params = f"{r['params'] / 1e6:.2f}M" if r.get("params") else ""
        if "rtf" not in r:
            lines.append(f"| {r['system']} | {params} | {r['device']} | | {r['input']} | "
                         f"{r.get('note', 'n/a')} | | | |")
            continue
        gpu = f"{r['gpu_peak_mb']:.0f}" if r.get("gpu_peak_mb") else ""
        wer = f"{r['wer']:.2f}" if r.get("wer") is not None else ""
        threads = r.get("threads") or ""
        lines.append(f"| {r['system']} | {params} | {r['device']} | {threads} | {r['input']} | "
                     f"{r['rtf']:.4f} | {r['peak_rss_mb']:.0f} | {gpu} | {wer} |")
    return "\n".join(lines)
