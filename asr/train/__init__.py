"""CTC training: the trainer (:mod:`asr.train.loop`) and its parts: checkpoints, schedules,
weight noise, length-bucketed batches split over data-parallel ranks, features on the fly."""

from asr.train.checkpoint import CheckpointError, average_weights, load_weights
from asr.train.ddp import DistInfo
from asr.train.interrupt import TrainingInterrupted
from asr.train.loop import Trainer, seed_everything
from asr.train.losses import ctc_loss
from asr.train.stats import EpochStats, StepResult

__all__ = [
    "CheckpointError",
    "DistInfo",
    "EpochStats",
    "StepResult",
    "Trainer",
    "TrainingInterrupted",
    "average_weights",
    "ctc_loss",
    "load_weights",
    "seed_everything",
]
