"""Surviving CUDA out-of-memory errors in training: split the update's batches into smaller
pieces and retry, or skip the update when single utterances do not fit; give up (with one line
saying what to change) after ``train.max_oom_batches`` such events.

Splitting keeps the update exact: the loss is a sum over utterances divided by a count fixed
before the split, so the pieces' gradients add up to the whole batch's gradient.
"""

from __future__ import annotations

import logging

import torch

from asr.errors import AsrError
from asr.train.data import AnyBatch

log = logging.getLogger("asr.train")

OutOfMemory = torch.OutOfMemoryError  # also torch.cuda.OutOfMemoryError


class OutOfMemoryLimit(AsrError):
    """More out-of-memory events than ``train.max_oom_batches``."""


def split_batch(batch: AnyBatch, pieces: int) -> list[AnyBatch]:
    """``batch`` cut into at most ``pieces`` consecutive groups of utterances (every utterance
    in exactly one group, in order)."""
    size = len(batch.utt_ids)
    pieces = max(1, min(pieces, size))
    if pieces == 1:
        return [batch]
    bounds = [round(i * size / pieces) for i in range(pieces + 1)]
    return [batch.rows(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


class OomPolicy:
    """Counts out-of-memory events and decides what the next try of an update does."""

    def __init__(self, limit: int, distributed: bool) -> None:
        self.limit = limit
        self.distributed = distributed
        self.events = 0
        self.skipped_updates = 0

    def next_pieces(self, batches: list[AnyBatch], pieces: int, step: int, error: str) -> int:
        """After an OOM with the batches cut into ``pieces``: the number of pieces for the
        retry, or 0 to skip the update. Raises :class:`OutOfMemoryLimit` past the limit."""
        self.events += 1
        first = error.splitlines()[0] if error.strip() else "out of memory"
        ids = ", ".join(batches[0].utt_ids[:3])
        if self.distributed:
            # The ranks would have to agree on a retry inside the gradient all-reduce.
            raise OutOfMemoryLimit(
                f"update {step}: out of memory on a batch of {ids}, ... ({first}); lower "
                "train.max_frames_per_batch, then run the same command again to resume"
            )
        if self.events > self.limit:
            raise OutOfMemoryLimit(
                f"update {step}: out of memory {self.events} times, more than "
                f"train.max_oom_batches {self.limit} (last on {ids}, ...); lower "
                "train.max_frames_per_batch, then run the same command again to resume"
            )
        largest = max(len(b.utt_ids) for b in batches)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if pieces >= largest:
            self.skipped_updates += 1
            log.warning(
                "update %d: out of memory even one utterance at a time (%s, ...); update skipped "
                "(%d of %d out-of-memory events allowed)", step, ids, self.events, self.limit,
            )
            return 0
        log.warning(
            "update %d: out of memory on %d utterance(s) (%s, ...); retrying in %d pieces "
            "(%d of %d out-of-memory events allowed)",
            step, largest, ids, pieces * 2, self.events, self.limit,
        )
        return pieces * 2
