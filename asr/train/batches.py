"""Host-side batch preparation for the training loop: padding (and waveform perturbation) of
the next update's batches in a background thread while the current update runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from asr.data.batching import Batch

T = TypeVar("T")
R = TypeVar("R")


def pin(batch: Batch) -> Batch:
    """Page-locked copy of a batch's large tensor, for asynchronous copies to a GPU."""
    return batch.pin_memory()


def prefetched(items: Sequence[T], prepare: Callable[[T], R]) -> Iterator[tuple[T, R]]:
    """``(item, prepare(item))`` in order, ``prepare`` of the next item running in one
    background thread while the caller works on the current one. Items are prepared in order,
    one at a time, so ``prepare`` may keep state."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(prepare, items[0])
        for position, item in enumerate(items):
            result = pending.result()
            if position + 1 < len(items):
                pending = pool.submit(prepare, items[position + 1])
            yield item, result
