"""A trainer's checkpoints: the full training state it writes (weights, optimizer, schedule,
counters, every rank's random state) and reads back for an exact resume, also mid-epoch, and
initial weights from another run. The files themselves (atomic writes, rotation, averaging)
are :mod:`asr.train.checkpoint`."""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from asr.train import ddp
from asr.train.checkpoint import (
    CheckpointError,
    load_file,
    load_weights,
    rng_state,
    set_rng_state,
    weights_path,
)
from asr.train.stats import EpochTotals

if TYPE_CHECKING:
    from asr.train.loop import Trainer

log = logging.getLogger("asr.train")


def training_state(trainer: Trainer) -> dict:
    """Everything an exact resume needs. Every rank must call it: the random states of all
    ranks are gathered (one entry per rank, so that each resumes its own stream)."""
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "epoch": trainer.epoch,
        "step_in_epoch": trainer.step_in_epoch,
        "global_step": trainer.global_step,
        "best_dev_loss": trainer.best_dev_loss,
        "best_dev_wer": trainer.best_dev_wer,
        "best_epoch": trainer.best_epoch,
        "history": trainer.history,
        "infinite_losses": trainer.infinite_losses,
        "totals": dataclasses.asdict(trainer.totals),
        "world_size": trainer.dist.world_size,
        "accum_grad": trainer.tc.accum_grad,
        "num_workers": trainer.tc.num_workers,  # streamed shards: the batch order depends on it
        "rng": ddp.all_gather(rng_state(), trainer.dist),
    }


def restore_state(trainer: Trainer, state: dict) -> None:
    """Put ``trainer`` where :func:`training_state` found it. A mid-epoch state needs the same
    number of ranks and ``accum_grad`` (its batch positions depend on both)."""
    mid_epoch = int(state.get("step_in_epoch", 0))
    if mid_epoch and (state.get("world_size"), state.get("accum_grad")) != (trainer.dist.world_size, trainer.tc.accum_grad):
        raise CheckpointError(
            f"{trainer.ckpt_dir}: the newest checkpoint is mid-epoch with {state.get('world_size')} "
            f"rank(s) and accum_grad {state.get('accum_grad')}; resume with the same, or remove "
            "its step-*.pt to resume from the last epoch end"
        )
    if mid_epoch and trainer.tc.shards and state.get("num_workers", trainer.tc.num_workers) != trainer.tc.num_workers:
        raise CheckpointError(
            f"{trainer.ckpt_dir}: the newest checkpoint is mid-epoch, streamed from shards by "
            f"{state.get('num_workers')} worker(s), whose batch order train.num_workers "
            f"{trainer.tc.num_workers} would change; resume with the same, or remove its "
            "step-*.pt to resume from the last epoch end"
        )
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.epoch = int(state["epoch"])
    trainer.step_in_epoch = mid_epoch
    trainer.global_step = int(state.get("global_step", 0))
    trainer.best_dev_loss = float(state["best_dev_loss"])
    trainer.best_dev_wer = float(state.get("best_dev_wer", math.inf))
    trainer.best_epoch = int(state["best_epoch"])
    trainer.history = list(state["history"])
    trainer.infinite_losses = int(state["infinite_losses"])
    trainer.totals = EpochTotals(**state["totals"]) if "totals" in state else EpochTotals()
    rank = trainer.dist.rank
    if "rng" in state:
        states = state["rng"]
        set_rng_state(states[rank] if rank < len(states) else states[0])
    else:  # written before per-rank random states were kept
        torch.set_rng_state(state["rng_torch"])
        random.setstate((3, tuple(int(x) for x in state["rng_python"].tolist()), None))


def resume_latest(trainer: Trainer) -> bool:
    """Restore the newest complete checkpoint of the run (False when there is none); rank 0
    first removes what interrupted writes left."""
    if trainer.dist.is_main:
        trainer.checkpoints.remove_incomplete()
    path = trainer.checkpoints.latest()
    if path is None:
        return False
    restore_state(trainer, load_file(path))
    where = f"epoch {trainer.epoch}" + (f", batch {trainer.step_in_epoch}" if trainer.step_in_epoch else "")
    log.info(
        "resumed from %s (%s, update %d, best dev loss %.4f at epoch %d)",
        path, where, trainer.global_step, trainer.best_dev_loss, trainer.best_epoch,
    )
    return True


def save_checkpoint(trainer: Trainer, mid_epoch: bool = False) -> Path | None:
    """Write the full training state (rank 0; every rank must call it)."""
    state = training_state(trainer)
    if not trainer.dist.is_main:
        return None
    return trainer.checkpoints.save(state, trainer.epoch, trainer.global_step, mid_epoch)


def init_weights(trainer: Trainer, path: str | Path) -> None:
    """Start from the weights (and CMVN statistics) in ``path``, e.g. the best dev checkpoint
    of a first phase; the optimizer starts afresh."""
    weights = load_weights(path)
    path = weights_path(path)
    try:
        trainer.model.load_state_dict({k: v.to(trainer.device) for k, v in weights.items()})
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise CheckpointError(
            f"{path}: weights do not fit this model ({lines[1] if len(lines) > 1 else lines[0]}); "
            "use the model.* settings of the run that wrote them"
        ) from None
    log.info("initial weights from %s", path)
