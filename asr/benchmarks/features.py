"""Front-end speed: audio-seconds per second for librosa, torchaudio's Kaldi fbank and ours.

All rows featurise the same decoded recordings (decoding is not timed): librosa
``melspectrogram`` + log per utterance (the baseline), ``torchaudio.compliance.kaldi.fbank``
per utterance, our batched ``LogMel`` and ``KaldiFbank`` on the CPU (1 thread and all
threads) and on the GPU when CUDA is usable. Each of ours is checked against its reference
(max |difference| in the log domain) so that the speed is measured at equal output.

The recordings: ``--corpus DIR`` (any directory of WAV/FLAC files), or the AN4 test set /
all of FSDD, found under ``--data-root`` (``an4/``, ``fsdd/``) or at ``$AN4_DIR`` /
``$FSDD_DIR``, the variables the recipes read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from asr.benchmarks.suite.machine import cpu_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus", default="auto",
        help="an4 (AN4 test, 16 kHz), fsdd (all FSDD, 8 kHz), or a directory of recordings "
        "(default: an4 when present, else fsdd)",
    )
    parser.add_argument("--data-root",
                        help="where an4/ and fsdd/ are, e.g. ../shared/data (default: $AN4_DIR "
                        "and $FSDD_DIR)")
    parser.add_argument("--max-files", type=int, default=0, help="use the first N files (0: all)")
    parser.add_argument("--n-mels", type=int, default=80, help="mel bands (default 80)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timed runs (default 3)")
    parser.add_argument("--batch-seconds", type=float, default=120.0,
                        help="padded audio seconds per batch for ours (default 120)")
    parser.add_argument("--json", help="also write the figures to this JSON file")


def _recordings(args: argparse.Namespace) -> tuple[str, list[Path]]:
    from asr.errors import AsrError

    an4 = _corpus_dir(args.data_root, "an4", "AN4_DIR")
    fsdd = _corpus_dir(args.data_root, "fsdd", "FSDD_DIR")
    corpus = args.corpus
    if corpus == "auto":
        corpus = "an4" if an4 and (an4 / "wav" / "an4test_clstk").is_dir() else "fsdd"
    if corpus in ("an4", "fsdd") and (an4 if corpus == "an4" else fsdd) is None:
        variable = "AN4_DIR" if corpus == "an4" else "FSDD_DIR"
        raise AsrError(f"--corpus {corpus}: where is it? Give --data-root DIR (holding {corpus}/), "
                       f"set ${variable}, or give --corpus DIR of recordings")
    if corpus == "an4":
        files = sorted((an4 / "wav" / "an4test_clstk").rglob("*.wav"))
        name = "AN4 test"
    elif corpus == "fsdd":
        files = sorted((fsdd / "recordings").glob("*.wav"))
        name = "FSDD (all)"
    else:
        files = sorted(p for p in Path(corpus).rglob("*") if p.suffix.lower() in (".wav", ".flac"))
        name = corpus
    if args.max_files > 0:
        files = files[: args.max_files]
    if not files:
        raise AsrError(f"{corpus}: no recordings found (see --corpus and --data-root)")
    return name, files


def _corpus_dir(data_root: str | None, name: str, variable: str) -> Path | None:
    """``DATA_ROOT/NAME`` when a data root is given, else ``$VARIABLE`` (None when unset)."""
    if data_root:
        return Path(data_root) / name
    value = os.environ.get(variable)
    return Path(value) if value else None


def _best_time(run: Callable[[], object], repeat: int, sync: Callable[[], None] = lambda: None) -> float:
    best = float("inf")
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def _batches(lengths: list[int], budget: int) -> list[list[int]]:
    """Indices sorted by length, grouped so that batch size x longest <= budget samples."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and (len(current) + 1) * lengths[index] > budget:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def run(args: argparse.Namespace) -> int:
    import librosa
    import numpy as np
    import torch
    import torchaudio.compliance.kaldi as kaldi

    from asr.audio import load_audio
    from asr.config import FeatureConfig
    from asr.features import KaldiFbank, LogMel

    name, files = _recordings(args)
    signals = [load_audio(f)[0] for f in files]
    rate = int(load_audio(files[0])[1])
    audio_s = sum(len(s) for s in signals) / rate
    n_mels = args.n_mels
    logmel_cfg = FeatureConfig(sample_rate=rate, n_mels=n_mels)
    fbank_cfg = FeatureConfig(type="fbank", sample_rate=rate, n_mels=n_mels, f_min=20.0)
    logmel = LogMel(logmel_cfg)
    fbank = KaldiFbank(fbank_cfg)
    n_fft, hop, win = logmel.n_fft, logmel.hop_length, logmel.win_length
    threads_all = torch.get_num_threads()

    def librosa_run() -> list[np.ndarray]:
        out = []
        for s in signals:
            power = librosa.feature.melspectrogram(
                y=s, sr=rate, n_fft=n_fft, hop_length=hop, win_length=win, window="hann",
                center=True, pad_mode="constant", power=2.0, n_mels=n_mels, htk=False,
                norm="slaney",
            )
            out.append(np.log(np.maximum(power, logmel_cfg.log_floor)).T)
        return out

    def torchaudio_run() -> list[torch.Tensor]:
        return [
            kaldi.fbank(torch.from_numpy(s)[None] * 32768, sample_frequency=rate,
                        num_mel_bins=n_mels, energy_floor=0.0, dither=0.0)
            for s in signals
        ]

    lengths = [len(s) for s in signals]
    batches = _batches(lengths, int(args.batch_seconds * rate))

    def ours(module: torch.nn.Module, device: torch.device) -> Callable[[], list[torch.Tensor]]:
        module = module.to(device)

        @torch.no_grad()
        def go() -> list[torch.Tensor]:
            out: list[torch.Tensor] = [torch.empty(0)] * len(signals)
            for batch in batches:
                lens = torch.tensor([lengths[i] for i in batch])
                wave = torch.zeros(len(batch), int(lens.max()))
                for row, i in enumerate(batch):
                    wave[row, : lengths[i]] = torch.from_numpy(signals[i])
                feats, n = module(wave.to(device, non_blocking=True), lens.to(device))
                for row, i in enumerate(batch):
                    out[i] = feats[row, : int(n[row])]
            return out

        return go

    def max_diff(a: list, b: list, mask_floor: float | None = None) -> float:
        worst = 0.0
        for x, y in zip(a, b, strict=True):
            x = np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
            y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y, dtype=np.float64)
            if x.shape != y.shape:
                return float("inf")
            d = np.abs(x - y)
            if mask_floor is not None:
                d = d[y > np.log(mask_floor)]
            worst = max(worst, float(d.max()) if d.size else 0.0)
        return worst

    ref_logmel = librosa_run()
    ref_fbank = torchaudio_run()
    rows: list[dict] = []

    def add(label: str, device: str, threads: str, seconds: float | None, diff: str) -> None:
        rows.append({"front end": label, "device": device, "threads": threads,
                     "audio_s_per_s": None if seconds is None else audio_s / seconds,
                     "max_abs_diff": diff})

    cpu = torch.device("cpu")
    # (label, device, threads, run, check against, reference); timed round-robin below so
    # that a change in machine load hits every row alike.
    plan: list[tuple[str, str, int | None, Callable, str, list | None, float | None]] = [
        ("librosa melspectrogram + log, per utterance (baseline)", "CPU", None, librosa_run,
         "reference", None, None),
        ("torchaudio.compliance.kaldi.fbank, per utterance", "CPU", threads_all, torchaudio_run,
         "reference", None, None),
    ]
    for threads in sorted({1, threads_all}):
        plan.append(("asr LogMel, batched", "CPU", threads, ours(logmel, cpu), "librosa",
                     ref_logmel, 1e-8))
        plan.append(("asr KaldiFbank, batched", "CPU", threads, ours(fbank, cpu), "torchaudio",
                     ref_fbank, None))
    gpu_name = "n/a (no CUDA)"
    sync: Callable[[], None] = lambda: None  # noqa: E731
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        gpu_name = torch.cuda.get_device_name(0)
        sync = torch.cuda.synchronize
        plan.append(("asr LogMel, batched", "GPU", None, ours(LogMel(logmel_cfg), gpu), "librosa",
                     ref_logmel, 1e-8))
        plan.append(("asr KaldiFbank, batched", "GPU", None, ours(KaldiFbank(fbank_cfg), gpu),
                     "torchaudio", ref_fbank, None))
    diffs: list[str] = []
    for _label, _device, threads, go, against, ref, floor in plan:
        if ref is None:
            diffs.append("reference")
            continue
        torch.set_num_threads(threads or threads_all)
        diffs.append(f"{max_diff(go(), ref, mask_floor=floor):.1e} vs {against}")  # + warm-up
    best = [float("inf")] * len(plan)
    for _ in range(args.repeat):
        for k, (_, device, threads, go, *_rest) in enumerate(plan):
            torch.set_num_threads(threads or threads_all)
            best[k] = min(best[k], _best_time(go, 1, sync if device == "GPU" else lambda: None))
    torch.set_num_threads(threads_all)
    for (label, device, threads, *_rest), seconds, diff in zip(plan, best, diffs, strict=True):
        shown = str(threads) if threads is not None else ("-" if device == "GPU" else "numpy's")
        add(label, device, shown, seconds, diff)
    if not torch.cuda.is_available():
        add("asr LogMel, batched", "GPU", "-", None, "n/a (no CUDA)")

    base = rows[0]["audio_s_per_s"]
    from asr.benchmarks import source_commit

    commit = source_commit()
    print(f"# Features benchmark, {datetime.date.today().isoformat()}, commit {commit}")
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores, torch {threads_all} threads); "
          f"GPU: {gpu_name}; torch {torch.__version__}, librosa {librosa.__version__}")
    print(f"recordings: {name}, {len(files)} files, {audio_s:.1f} s of audio at {rate} Hz; "
          f"{n_mels} mel bands, 25 ms / 10 ms frames; decoding not timed; best of {args.repeat}")
    print()
    print("| front end | device | threads | audio-s/s | × librosa | max abs diff (log) |")
    print("|---|---|---:|---:|---:|---|")
    for row in rows:
        speed = row["audio_s_per_s"]
        fig = "n/a (no CUDA)" if speed is None else f"{speed:,.0f}"
        ratio = "-" if speed is None else f"{speed / base:.1f}"
        print(f"| {row['front end']} | {row['device']} | {row['threads']} | {fig} | {ratio} | "
              f"{row['max_abs_diff']} |")
    if args.json:
        from asr.utils import atomic_write_text

        atomic_write_text(args.json, json.dumps(
            {"corpus": name, "files": len(files), "audio_seconds": audio_s, "rows": rows,
             "gpu": gpu_name, "commit": commit}, indent=2) + "\n")
    return 0
