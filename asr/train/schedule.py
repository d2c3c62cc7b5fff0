"""Learning-rate schedules: linear warm-up, then cosine decay over the whole run, a dev-loss
plateau decay (epoch ends), or a constant rate."""

from __future__ import annotations

import math

import torch

from asr.config import TrainConfig


def make_plateau(optimizer: torch.optim.Optimizer, tc: TrainConfig) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """The epoch-end scheduler of ``lr_schedule: plateau`` (kept, unused, for the others so that
    every checkpoint has the same keys)."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=tc.lr_decay_factor, patience=tc.lr_decay_patience
    )


def step_lr(tc: TrainConfig, global_step: int, progress: float) -> float | None:
    """Learning rate for update number ``global_step`` (0-based) at ``progress`` in [0, 1] of the
    run, or None to leave the optimizer's rate alone (plateau and constant after warm-up: the
    plateau scheduler owns it then)."""
    warmup = min(1.0, (global_step + 1) / tc.warmup_steps) if tc.warmup_steps else 1.0
    if tc.lr_schedule == "cosine":
        floor = tc.final_lr_ratio
        lr = tc.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
    elif global_step < tc.warmup_steps:
        lr = tc.lr
    else:
        return None
    return lr * warmup


def set_lr(optimizer: torch.optim.Optimizer, lr: float | None) -> None:
    if lr is None:
        return
    for group in optimizer.param_groups:
        group["lr"] = lr
