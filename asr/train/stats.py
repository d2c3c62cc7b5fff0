"""Figures of one update, of an epoch in progress, and of a finished epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class StepResult:
    """One optimizer update (over ``accum_grad`` batches) on this rank."""

    updated: bool
    loss: float = 0.0  # summed CTC loss of the batches that entered the update
    utterances: int = 0
    frames: int = 0  # input feature frames
    grad_norm: float = math.nan
    skipped: int = 0  # batches left out (non-finite loss) or updates skipped (non-finite grads)


@dataclass
class EpochTotals:
    """Running sums of the current epoch; saved in mid-epoch checkpoints."""

    loss: float = 0.0
    utterances: int = 0
    frames: int = 0
    skipped: int = 0
    losses: list[float] = field(default_factory=list)  # per-update loss per utterance

    def add(self, result: StepResult) -> None:
        self.skipped += result.skipped
        if result.updated:
            self.loss += result.loss
            self.utterances += result.utterances
            self.frames += result.frames
            self.losses.append(result.loss / max(result.utterances, 1))


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    dev_loss: float
    dev_wer: float
    dev_cer: float
    lr: float
    seconds: float
    frames_per_s: float
    skipped_batches: int


def format_duration(seconds: float) -> str:
    """``75.4`` -> ``"1m15s"``; ``3725`` -> ``"1h02m"``."""
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def format_eta(history: list[dict], epochs: int) -> str:
    """Time left for the epochs not yet run, at the mean pace of the last (at most 3) epochs of
    ``history`` (dicts of :class:`EpochStats`); an upper bound when early stopping ends sooner."""
    if not history:
        return "unknown"
    left = max(epochs - int(history[-1]["epoch"]), 0)
    recent = [float(h["seconds"]) for h in history[-3:]]
    return format_duration(left * sum(recent) / len(recent))
