"""Training speed: frames per second of our trainer against a bare PyTorch loop, fp32 and bf16.

The bare loop is what one would write by hand: ``nn.LSTM`` (bidirectional) + ``Linear`` +
``F.ctc_loss`` + the optimizer, over padded batches whose (normalised, stacked) features are
already on the device. Our trainer runs its real epoch loop (``Trainer.train_epoch``: batch
padding in a background thread, features computed on the fly from waveforms on the device,
packed sequences, CMVN, clipping, schedule, bookkeeping). Both see the same batches of the same
synthetic utterances with the same model shape, and the same warm-up updates before timing.
Optional rows: our trainer on precomputed features, with packed sequences on the CPU
(``model.lstm_impl: packed``), with peephole cells, with torch.compile. The table
gives frames (10 ms input frames) per second, the ratio to the bare loop at the same precision,
milliseconds per update and peak GPU memory.
"""

from __future__ import annotations

import abc
import argparse
import json
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

VARIANTS = ("bare", "ours", "ours-precomputed", "ours-packed", "peephole", "compile")
DEFAULT_SETTINGS = [
    "features.sample_rate=8000",
    "features.n_mels=40",
    "model.num_layers=3",
    "model.hidden_size=64",
    "model.frame_stack=3",
    "model.dropout=0.0",
    "train.optimizer=adam",
    "train.max_frames_per_batch=8000",
    "train.max_utts_per_batch=64",
    "train.early_stop_patience=0",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", default=[],
                        help="YAML presets (features/model/train) applied over the defaults: "
                        "40 mels at 8 kHz, 3 x 64 bidirectional cells, 3 stacked frames")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override one config value")
    parser.add_argument("--device", default="auto", help="auto (CUDA when usable), cpu, cuda[:N]")
    parser.add_argument("--precision", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--variants", default="bare,ours,ours-precomputed",
                        help=f"comma-separated rows, from {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=10, help="timed updates per row (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed updates first (default 2)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds over all rows, each timing the same updates; every row "
                        "keeps its fastest round (default 3)")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="shortest utterance")
    parser.add_argument("--max-seconds", type=float, default=4.0, help="longest utterance")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this JSON file")


@dataclass
class Row:
    variant: str
    precision: str
    frames_per_s: float
    ms_per_update: float
    peak_mib: float | None
    ratio: float | None = None


def _allocated(device: torch.device) -> int:
    return torch.cuda.memory_allocated(device) if device.type == "cuda" else 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _synthetic(config, count_needed: int, args: argparse.Namespace):
    """Waveform and feature examples of random lengths whose batches number at least
    ``count_needed``. Labels are random tokens, one per 4 output frames."""
    from asr.data.batching import bucket_batches
    from asr.data.dataset import Example
    from asr.features import build_frontend
    from asr.text import Tokenizer
    from asr.train.data import WaveExample

    generator = torch.Generator().manual_seed(args.seed)
    tokenizer = Tokenizer.build(["abcdefghijklmnopqrstuvwxyz '"], "char")
    frontend = build_frontend(config.features)
    rate = config.features.sample_rate
    k = config.model.frame_stack
    waves: list[WaveExample] = []
    feats: list[Example] = []
    while True:
        for _ in range(16):
            seconds = args.min_seconds + (args.max_seconds - args.min_seconds) * float(torch.rand(1, generator=generator))
            samples = 0.1 * torch.randn(int(seconds * rate), generator=generator)
            frames = int(frontend.num_frames(torch.tensor(len(samples))))
            label_len = max(1, frames // (4 * k))
            tokens = torch.randint(1, len(tokenizer), (label_len,), generator=generator)
            utt = f"utt{len(waves):05d}"
            waves.append(WaveExample(utt, samples, tokens, "", "s", seconds, frames))
            with torch.no_grad():
                f, _ = frontend(samples)
            feats.append(Example(utt, f[0], tokens, "", "s", seconds))
        lengths = [w.num_frames for w in waves]
        batches = bucket_batches(lengths, config.train.max_frames_per_batch, config.train.max_utts_per_batch)
        if len(batches) >= count_needed:
            return tokenizer, waves, feats


class _Runner(abc.ABC):
    """One row of the table: ``warm()`` once, then ``timed()`` returns (seconds, frames) of the
    same timed updates each call."""

    @abc.abstractmethod
    def warm(self) -> None: ...

    @abc.abstractmethod
    def timed(self) -> tuple[float, int]: ...


class _BareLoop(_Runner):
    """The hand-written loop on the same batches, features already on the device."""

    def __init__(self, config, trainer, feats, batches, device, precision, warmup, steps) -> None:
        from torch import nn

        from asr.data.batching import collate
        from asr.model import stack_frames

        mc = config.model
        k = mc.frame_stack
        self.device, self.precision, self.warmup, self.steps = device, precision, warmup, steps
        torch.manual_seed(0)
        self.lstm = nn.LSTM(trainer.model.feat_dim * k, mc.hidden_size, mc.num_layers,
                            bidirectional=mc.bidirectional, batch_first=True).to(device)
        self.out = nn.Linear(mc.hidden_size * (2 if mc.bidirectional else 1),
                             trainer.model.num_tokens).to(device)
        params = list(self.lstm.parameters()) + list(self.out.parameters())
        self.optimizer = torch.optim.Adam(params, lr=config.train.lr)
        mean, std = trainer.model.normalizer.mean.cpu(), trainer.model.normalizer.std.cpu()
        self.prepared = []
        for indices in batches:  # everything on the device before the clock starts
            batch = collate([feats[i] for i in indices])
            x, lengths = stack_frames(((batch.feats - mean) / std).to(device),
                                      batch.feat_lengths.to(device), k)
            self.prepared.append((x, lengths, batch.targets.to(device),
                                  batch.target_lengths.to(device), int(batch.feat_lengths.sum())))

    def _step(self, x, lengths, targets, target_lengths) -> None:
        from torch.nn import functional as F

        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            hidden, _ = self.lstm(x)
            logits = self.out(hidden)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths, blank=0,
                          reduction="sum", zero_infinity=True) / x.shape[0]
        loss.backward()
        self.optimizer.step()

    def warm(self) -> None:
        for x, lengths, targets, target_lengths, _ in self.prepared[: self.warmup]:
            self._step(x, lengths, targets, target_lengths)

    def timed(self) -> tuple[float, int]:
        _sync(self.device)
        start = time.perf_counter()
        frames = 0
        for x, lengths, targets, target_lengths, f in self.prepared[self.warmup : self.warmup + self.steps]:
            self._step(x, lengths, targets, target_lengths)
            frames += f
        _sync(self.device)
        return time.perf_counter() - start, frames


class _Ours(_Runner):
    """Our trainer's own epoch loop over the same batches."""

    def __init__(self, trainer, device, warmup, steps) -> None:
        self.trainer, self.device, self.warmup, self.steps = trainer, device, warmup, steps

    def warm(self) -> None:
        self.trainer.train_epoch(limit=self.warmup)

    def timed(self) -> tuple[float, int]:
        self.trainer.step_in_epoch = self.warmup  # the same updates each time
        before = self.trainer.totals.frames
        _sync(self.device)
        start = time.perf_counter()
        self.trainer.train_epoch(limit=self.steps)
        _sync(self.device)
        return time.perf_counter() - start, self.trainer.totals.frames - before


def _config(args: argparse.Namespace, variant: str, precision: str):
    """The benchmark's defaults, then ``--config`` files, then ``--set`` overrides (each checked
    on its own first, so that an error names the file or override at fault)."""
    from asr.config import config_from_dict, load_config, load_yaml, parse_override

    layers = [parse_override(o) for o in DEFAULT_SETTINGS]
    for path in args.config:
        load_config([path])
        layers.append(load_yaml(path))
    for override in args.overrides:
        load_config(None, [override])
        layers.append(parse_override(override))
    merged: dict = {}
    for layer in layers:
        for section, values in layer.items():
            merged.setdefault(section, {}).update(values or {})
    config = config_from_dict(merged, "benchmark config")
    config.train.device = args.device
    config.train.precision = precision
    config.train.features_on_the_fly = variant in ("ours", "ours-packed", "peephole", "compile")
    if variant == "ours-packed":
        config.model.lstm_impl = "packed"
    config.train.compile = variant == "compile"
    if variant == "peephole":
        config.model.cell = "peephole"
    return config


def run(args: argparse.Namespace) -> int:
    from asr.benchmarks import source_commit
    from asr.errors import AsrError
    from asr.model.lstm import cpu_runs_bf16_lstm
    from asr.train import Trainer
    from asr.utils import resolve_device

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    for v in variants:
        if v not in VARIANTS:
            raise AsrError(f"--variants: unknown row {v!r}; use {', '.join(VARIANTS)}")
    for p in precisions:
        if p not in ("fp32", "bf16"):
            raise AsrError(f"--precision: unknown {p!r}; use fp32 or bf16")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cpu" and "bf16" in precisions and not cpu_runs_bf16_lstm():
        # oneDNN refuses a bf16 LSTM below AVX-512: a row we cannot run, not a failure.
        print("bf16 rows skipped: this CPU's oneDNN has no bfloat16 LSTM (needs AVX-512)")
        precisions = [p for p in precisions if p != "bf16"]
    base = _config(args, "ours", "fp32")
    needed = args.warmup + args.steps
    tokenizer, waves, feats = _synthetic(base, needed, args)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        runners: list[tuple[str, str, _Runner, float]] = []
        for precision in precisions:
            for variant in variants:
                config = _config(args, variant, precision)
                data = feats if variant in ("bare", "ours-precomputed") else waves
                allocated = _allocated(device)
                trainer = Trainer(config, Path(tmp) / f"{variant}-{precision}", tokenizer, data, [],
                                  progress=False)
                trainer._compute_cmvn()
                runner: _Runner
                if variant == "bare":
                    batches = trainer.sampler.batches(0)[:needed]
                    runner = _BareLoop(config, trainer, feats, batches, device, precision,
                                       args.warmup, args.steps)
                    del trainer
                else:
                    runner = _Ours(trainer, device, args.warmup, args.steps)
                runner.warm()
                # Weights, gradients, optimizer state and pre-loaded batches of this row.
                runners.append((variant, precision, runner, _allocated(device) - allocated))
        # Rounds over all rows, so that a slow spell of a shared machine hits every row alike;
        # each row keeps its fastest round.
        best: dict[int, tuple[float, int, float | None]] = {}
        for _ in range(args.repeat):
            for index, (_, _, runner, static) in enumerate(runners):
                allocated = _allocated(device)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                seconds, frames = runner.timed()
                peak = None
                if device.type == "cuda":
                    transient = torch.cuda.max_memory_allocated(device) - allocated
                    peak = (static + transient) / 2**20
                if index not in best or seconds < best[index][0]:
                    best[index] = (seconds, frames, peak)
        for index, (variant, precision, _, _) in enumerate(runners):
            seconds, frames, peak = best[index]
            rows.append(Row(variant, precision, frames / seconds, 1000 * seconds / args.steps, peak))
    for row in rows:
        bare = next((r for r in rows if r.variant == "bare" and r.precision == row.precision), None)
        row.ratio = row.frames_per_s / bare.frames_per_s if bare else None
    mc = base.model
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    print(f"training speed: {mc.num_layers} x {mc.hidden_size} {'bi' if mc.bidirectional else 'uni'}"
          f"LSTM, {base.features.n_mels} mels x {mc.frame_stack} stacked, "
          f"{base.train.max_frames_per_batch} frames per batch, {args.steps} timed updates after "
          f"{args.warmup} (fastest of {args.repeat}); device {device_name}; torch {torch.__version__}; commit {source_commit()}")
    print()
    print("| trainer | precision | frames/s | x bare loop | ms/update | peak GPU MiB |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        peak = f"{row.peak_mib:.0f}" if row.peak_mib is not None else "-"
        print(f"| {row.variant} | {row.precision} | {row.frames_per_s:,.0f} | {ratio} | "
              f"{row.ms_per_update:.0f} | {peak} |")
    if args.json:
        from asr.utils import atomic_write_text

        atomic_write_text(args.json, json.dumps(
            {"device": device_name, "torch": torch.__version__, "commit": source_commit(),
             "rows": [row.__dict__ for row in rows]}, indent=2))
    return 0
