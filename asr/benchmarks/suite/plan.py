"""The steps of ``asr benchmark all``: what each runs, at which sizes, and its one-line result.

Every step but the data step runs an existing command in a child process (``asr benchmark
KIND``, ``asr train``, ``pytest``), with the data and model paths given explicitly. A CPU step
runs with ``CUDA_VISIBLE_DEVICES=""``, so that nothing of it lands on a GPU.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from asr.benchmarks.suite.digits import parse_train_log
from asr.benchmarks.suite.runner import Record


def preset(group: str, name: str) -> Path:
    """A preset YAML file shipped in the package (``model``, ``ctc_3l_250h``)."""
    from asr.presets import preset_path

    return preset_path(group, name)


@dataclass(frozen=True)
class Sizes:
    """How much each step does; ``budgets`` caps each step's seconds."""

    num_train: int  # connected training utterances built (the isolated takes come on top)
    max_train: int  # training utterances kept (0: all)
    num_dev: int
    num_test: int
    feature_files: int  # 0: all of FSDD
    feature_repeat: int
    train_args: tuple[str, ...]  # the train benchmark's sizes and model
    epochs: int
    decode_utts: int  # 0: all of the test set
    beams: str
    decode_repeat: int
    transcribe_utts: int
    long_minutes: float
    threads: int  # CPU threads of the CPU rows (0: torch's choice)
    presets: bool  # transcribe also times the 5 x 250 preset (two more processes)
    budgets: dict[str, float] = field(default_factory=dict)


# The digits GPU preset's model and batches (recipes/digits/conf/gpu.yaml).
GPU_TRAIN_SHAPE = ("--config", str(preset("model", "ctc_3l_250h")),
                   "--set", "train.max_frames_per_batch=60000",
                   "--set", "train.max_utts_per_batch=256")

PROFILES: dict[str, Sizes] = {
    # One H100/H200: about 5 minutes in all, 8 at most. The recipe's full digits data.
    "gpu": Sizes(
        num_train=4000, max_train=0, num_dev=300, num_test=500, feature_files=1000,
        feature_repeat=3,
        train_args=(*GPU_TRAIN_SHAPE, "--steps", "10", "--warmup", "3", "--repeat", "3"),
        epochs=8, decode_utts=0, beams="16,64,100", decode_repeat=3, transcribe_utts=100,
        long_minutes=10.0, threads=0, presets=True,
        budgets={"data": 60, "gpu-tests": 120, "features": 90, "train": 90, "digits-train": 150,
                 "decode": 60, "transcribe": 90}),
    # The CPU rows on their own (about 5 minutes on 2 cores): smaller sets, one thread, the
    # small preset's shape for the train benchmark (the GPU preset's batches take a minute per
    # update here, so its two epochs on 300 utterances time the epoch but learn nothing).
    "cpu": Sizes(
        num_train=300, max_train=300, num_dev=50, num_test=100, feature_files=300,
        feature_repeat=2, train_args=("--steps", "4", "--warmup", "1", "--repeat", "2"),
        epochs=2, decode_utts=0, beams="16,64", decode_repeat=2, transcribe_utts=20,
        long_minutes=2.0, threads=1, presets=True,
        budgets={"data": 60, "gpu-tests": 60, "features": 120, "train": 120, "digits-train": 240,
                 "decode": 90, "transcribe": 150}),
    # --quick: tiny sizes that check every step end to end; the figures measure nothing. Each
    # process costs seconds of imports, so transcribe leaves out the preset's two.
    "quick": Sizes(
        num_train=6, max_train=16, num_dev=6, num_test=6, feature_files=4, feature_repeat=1,
        train_args=("--steps", "1", "--warmup", "1", "--repeat", "1", "--max-seconds", "2",
                    "--set", "train.max_frames_per_batch=2000"),
        epochs=1, decode_utts=0, beams="4", decode_repeat=1, transcribe_utts=3,
        long_minutes=0.2, threads=1, presets=False,
        budgets={"data": 30, "gpu-tests": 60, "features": 40, "train": 40, "digits-train": 60,
                 "decode": 40, "transcribe": 60}),
}


class Unavailable(Exception):
    """A step cannot be built (e.g. no model); recorded as failed with this message."""


@dataclass
class Context:
    """What the steps share: paths, sizes, the device of this run and earlier results."""

    work: Path
    fsdd: Path
    device: str  # "cpu" or "cuda": the device of this run's rows
    sizes: Sizes
    model: Path | None = None  # --model
    tests: Path | None = None  # --tests: the checkout's test suite
    train_config: Path | None = None  # --train-config: the digits GPU preset's training settings
    records: dict[str, Record] = field(default_factory=dict)  # "name/device" -> record

    @property
    def data(self) -> Path:
        return self.work / "data"

    def digits_model(self) -> tuple[Path, str]:
        """The trained digits model for decode and transcribe, and where it comes from."""
        if self.model is not None:
            return self.model, "--model"
        for key in (f"digits-train/{self.device}", "digits-train/cpu"):
            trained = self.records.get(key)
            if trained is not None and trained.status == "ok" and "model" in trained.extra:
                return Path(trained.extra["model"]), f"the model of the {key} step"
        raise Unavailable("no trained digits model: give --model, or let the digits-train step "
                          "finish (it failed or did not run)")


@dataclass
class Invocation:
    command: list[str]
    json: Path | None = None


@dataclass(frozen=True)
class StepSpec:
    name: str
    title: str
    cpu: bool  # has a CPU row
    gpu: bool  # has a GPU row
    build: Callable[[Context, str], Invocation]
    summarize: Callable[[Record], str]
    after: Callable[[Context, Record], None] | None = None
    setup: bool = False  # runs whatever the device, before the rows that need it
    needs: tuple[str, ...] = ()  # steps that must have finished first
    explain_failure: Callable[[Record], str] | None = None  # a better reason than the error line


def _asr(*args: str) -> list[str]:
    return [sys.executable, "-m", "asr.cli.main", *args]


def _json_path(ctx: Context, name: str, device: str) -> Path:
    return ctx.work / "json" / f"{name}-{device}.json"


def environment(device: str, threads: int = 0) -> dict[str, str]:
    """The child's environment: this one, with CUDA hidden from CPU rows and,
    with ``threads``, their torch thread count fixed (two threads on two busy cores wait on
    each other, which makes every row slower and erratic)."""
    # The children run in this process's directory with its PYTHONPATH, so that they import
    # the same asr, installed or not.
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
    return env


# -- the steps ------------------------------------------------------------------------------------


def _data(ctx: Context, device: str) -> Invocation:
    s = ctx.sizes
    return Invocation([sys.executable, "-m", "asr.benchmarks.suite.digits", "--fsdd", str(ctx.fsdd),
                       "--out", str(ctx.data), "--num-train", str(s.num_train), "--num-dev",
                       str(s.num_dev), "--num-test", str(s.num_test), "--max-train", str(s.max_train)])


def _gpu_tests(ctx: Context, device: str) -> Invocation:
    if ctx.tests is None:
        raise Unavailable("give --tests DIR (a checkout's tests/) for the gpu-marked tests")
    return Invocation([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                       str(ctx.tests)])


def _features(ctx: Context, device: str) -> Invocation:
    s, js = ctx.sizes, _json_path(ctx, "features", device)
    corpus = (["--corpus", "fsdd", "--data-root", str(ctx.fsdd.parent)] if ctx.fsdd.name == "fsdd"
              else ["--corpus", str(ctx.fsdd / "recordings")])
    return Invocation(_asr("benchmark", "features", *corpus, "--n-mels", "40", "--repeat",
                           str(s.feature_repeat), "--max-files", str(s.feature_files),
                           "--json", str(js)), js)


def _train_bench(ctx: Context, device: str) -> Invocation:
    s, js = ctx.sizes, _json_path(ctx, "train", device)
    threads = ["--threads", str(s.threads)] if device == "cpu" and s.threads else []
    return Invocation(_asr("benchmark", "train", "--device", device, "--precision", "fp32,bf16",
                           "--variants", "bare,ours,ours-precomputed", *s.train_args, *threads,
                           "--json", str(js)), js)


def _exp_dir(ctx: Context, device: str) -> Path:
    return ctx.work / "exp" / f"digits_gpu_preset-{device}"


def _digits_train(ctx: Context, device: str) -> Invocation:
    s = ctx.sizes
    if ctx.train_config is None:
        raise Unavailable("give --train-config FILE (the digits recipe's conf/gpu.yaml) for the "
                          "digits GPU preset's training")
    threads = ["--set", f"train.num_threads={s.threads}"] if device == "cpu" else []
    return Invocation(_asr("train", "--train", str(ctx.data / "train"), "--dev",
                           str(ctx.data / "dev"), "--exp-dir", str(_exp_dir(ctx, device)), "--no-progress", "--no-resume",
                           "--config", str(preset("features", "logmel40_8k")),
                           "--config", str(preset("model", "ctc_3l_250h")),
                           "--config", str(ctx.train_config),
                           "--set", f"train.epochs={s.epochs}", "--set", f"train.device={device}",
                           *threads))


def _after_digits_train(ctx: Context, record: Record) -> None:
    exp = _exp_dir(ctx, record.device)
    log = exp / "train.log"
    text = log.read_text(errors="replace") if log.is_file() else record.output
    record.figures = parse_train_log(text)
    if (exp / "final" / "model.pt").is_file():
        record.extra["model"] = str(exp / "final")


def _decode(ctx: Context, device: str) -> Invocation:
    s, js = ctx.sizes, _json_path(ctx, "decode", device)
    model, origin = ctx.digits_model()
    return Invocation(_asr("benchmark", "decode", "--model", str(model), "--data",
                           str(ctx.data / "test"), "--train-text", str(ctx.data / "train" / "text"),
                           "--beam-sizes", s.beams, "--repeat", str(s.decode_repeat), "--max-utts",
                           str(s.decode_utts), "--device", device, "--json", str(js)), js)


def _transcribe(ctx: Context, device: str) -> Invocation:
    s, js = ctx.sizes, _json_path(ctx, "transcribe", device)
    model, _ = ctx.digits_model()
    presets = str(preset("model", "ctc_5l_250h")) if s.presets else ""
    return Invocation(_asr("benchmark", "transcribe", "--model", str(model), "--data",
                           str(ctx.data / "test"), "--presets", presets, "--devices", device,
                           "--threads", str(s.threads), "--max-utts", str(s.transcribe_utts),
                           "--long-minutes", str(s.long_minutes), "--no-pocketsphinx",
                           "--json", str(js)), js)


# -- one-line results -----------------------------------------------------------------------------


def _rows(record: Record) -> list[dict]:
    figures = record.figures
    if isinstance(figures, dict):
        return list(figures.get("rows", []))
    return list(figures or [])


def _sum_data(record: Record) -> str:
    return record.output.strip().splitlines()[-1] if record.output.strip() else ""


def _sum_gpu_tests(record: Record) -> str:
    lines = [line.strip("= ") for line in record.output.splitlines() if line.strip()]
    counts = re.compile(r"\d+ (passed|failed|skipped|deselected|errors?)\b")
    return next((line for line in reversed(lines) if counts.search(line)), "")


def _failed_gpu_tests(record: Record) -> str:
    """pytest's counts and the first failing tests, instead of one FAILED line."""
    failed = [line.split()[1] for line in record.output.splitlines()
              if line.startswith(("FAILED ", "ERROR ")) and len(line.split()) > 1]
    shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
    return "; ".join(filter(None, [_sum_gpu_tests(record), shown])) or (record.reason or "")


def _sum_features(record: Record) -> str:
    rows = _rows(record)
    base = rows[0].get("audio_s_per_s") if rows else None
    parts = []
    for row in rows:
        speed = row.get("audio_s_per_s")
        if row.get("front end") == "asr LogMel, batched" and speed and base:
            where = row["device"] + (f" {row['threads']} thr" if row["device"] == "CPU" else "")
            parts.append(f"{where} {speed / base:,.1f}×")
    if not parts:
        return ""
    return f"LogMel batched vs librosa ({base:,.0f} audio-s/s): " + ", ".join(parts)


def _sum_train(record: Record) -> str:
    rows = _rows(record)
    parts = [f"{r['precision']} {r['ratio']:.2f}×" for r in rows
             if r.get("variant") == "ours" and r.get("ratio") is not None]
    peaks = [r["peak_mib"] for r in rows if r.get("peak_mib") is not None]
    text = "ours (features on the fly) vs bare loop: " + ", ".join(parts) if parts else ""
    return text + (f"; peak GPU {max(peaks):,.0f} MiB" if peaks else "")


DECODER_NAMES = {"beam (ours)": "prefix beam", "cuda (torchaudio)": "CUDA beam"}


def _sum_decode(record: Record) -> str:
    rows = [r for r in _rows(record) if not r.get("lm") and "utts_per_s" in r]
    beams = [r["beam"] for r in rows if r.get("beam")]
    widest = max(beams) if beams else None
    parts = []
    for r in rows:
        if r["beam"] in (None, widest):
            name = DECODER_NAMES.get(r["decoder"], r["decoder"])
            beam = f" {r['beam']}" if r["beam"] else ""
            parts.append(f"{name}{beam} ({r['device']}) {r['utts_per_s']:,.0f} utt/s, "
                         f"WER {r['wer']:.2f} %")
    return "; ".join(parts)


def _sum_transcribe(record: Record) -> str:
    parts = []
    for r in _rows(record):
        if "rtf" in r:
            parts.append(f"{r['system'].split(' (')[0]} {r['input']} RTF {r['rtf']:.4f}")
        elif r.get("note"):
            parts.append(f"{r['system'].split(' (')[0]} {r['input']}: {r['note']}")
    return "; ".join(parts)


def _sum_digits_train(record: Record) -> str:
    figures = record.figures if isinstance(record.figures, dict) else {}
    epochs = figures.get("epochs", [])
    if not epochs:
        return ""
    last = epochs[-1]
    rate = (f", dev {last['dev_metric']} {last['dev_rate']:.2f} % after epoch {last['epoch']}"
            if "dev_rate" in last else "")
    per = figures.get("seconds_per_epoch")
    count = f"{len(epochs)} epoch{'s' if len(epochs) != 1 else ''}"
    return f"{count}, {per:.1f} s/epoch{rate}" if per else f"{count}{rate}"


STEPS: tuple[StepSpec, ...] = (
    StepSpec("data", "digits data dirs from FSDD", True, False, _data, _sum_data, setup=True),
    StepSpec("gpu-tests", "the gpu-marked tests (pytest -m gpu)", False, True, _gpu_tests,
             _sum_gpu_tests, explain_failure=_failed_gpu_tests),
    StepSpec("features", "features: batched front ends against librosa", True, True, _features,
             _sum_features),
    StepSpec("train", "training speed: our trainer against the bare loop, fp32 and bf16", True, True,
             _train_bench, _sum_train),
    StepSpec("digits-train", "short training of the digits GPU preset (ctc_3l_250h, logmel40_8k)",
             True, True, _digits_train, _sum_digits_train, _after_digits_train, needs=("data",)),
    StepSpec("decode", "decoding: greedy, prefix beam and CUDA beam", True, True, _decode,
             _sum_decode, needs=("data", "digits-train")),
    StepSpec("transcribe", "transcribe RTF: the digits model and the 5 x 250 preset", True, True,
             _transcribe, _sum_transcribe, needs=("data", "digits-train")),
)


def load_figures(invocation: Invocation) -> dict | list | None:
    """The step's own JSON, when it wrote one."""
    if invocation.json is None or not invocation.json.is_file():
        return None
    try:
        return json.loads(invocation.json.read_text())
    except json.JSONDecodeError:
        return None

# Run order: the longest chain (data, digits training, then the rows that use its model) first,
# so that with parallel lanes (--quick) the independent rows fill in beside it. The report keeps STEPS' order.
RUN_ORDER = ("data", "gpu-tests", "digits-train", "transcribe", "decode", "features", "train")
