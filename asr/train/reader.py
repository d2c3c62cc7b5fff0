"""Batches made from training examples for the loop: audio read, resampled and perturbed, and
padded, in ``torch.utils.data.DataLoader`` worker processes (``train.num_workers``), or in one
background thread when there are none.

A batch is asked for by its :class:`BatchKey` (epoch, this rank's batch index, the example
indices and the speed factors the sampler chose for them), and its other random numbers
(noise) come from ``(seed, rank, epoch, batch index)`` alone. So a run gives the same batches, and the same
weights, with any number of workers, and a resumed run the same as an uninterrupted one.

The examples may hold their inputs (:class:`~asr.data.dataset.Example` features,
:class:`~asr.train.data.WaveExample` samples: ``train.preload``) or only refer to them
(:class:`~asr.train.lazy.LazyExample`); the batches are the same. An utterance whose audio
cannot be read is left out of its batch and reported with it (the trainer counts it against
``--max-bad-utts``). A worker that dies stops the run with one line naming it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from asr.data.dataset import Example
from asr.data.wav_audio import load_utterance_audio
from asr.errors import AsrError, AudioError
from asr.train.batches import pin, prefetched
from asr.train.data import AnyBatch, AnyExample, WaveExample, make_batch
from asr.train.lazy import LazyExample

Unreadable = tuple[str, str]  # (utt_id, error)


class LoaderError(AsrError):
    """A data loader worker process died (killed, out of memory, crashed)."""


@dataclass(frozen=True)
class BatchKey:
    epoch: int
    index: int  # this rank's batch index within the epoch
    indices: tuple[int, ...]  # example indices of the batch
    speeds: tuple[float, ...] = ()  # their speed factors (empty: drawn when read, or none)


@dataclass
class ReadBatch:
    """A padded batch (None when none of its utterances could be read) and what was left out."""

    key: BatchKey | None
    batch: AnyBatch | None
    unreadable: list[Unreadable] = field(default_factory=list)

    def pin_memory(self) -> ReadBatch:  # called by the DataLoader with pin_memory=True
        return ReadBatch(self.key, pin(self.batch) if self.batch is not None else None, self.unreadable)


class BatchReader(Dataset):
    """Map-style dataset of batches: ``reader[BatchKey]`` is a :class:`ReadBatch`.

    ``wave_augment`` (an :class:`~asr.features.augment.WaveformAugment`, or None) perturbs
    training waveforms, at the key's speed factors; its generator is reseeded for every batch
    from ``(seed, rank, key.epoch, key.index)``.
    """

    def __init__(self, examples: Sequence[AnyExample], sample_rate: int, wave_augment=None,
                 seed: int = 0, rank: int = 0) -> None:
        self.examples = examples
        self.sample_rate = sample_rate
        self.wave_augment = wave_augment
        self.seed = seed
        self.rank = rank

    def __getitem__(self, key: BatchKey) -> ReadBatch:
        rng = None
        if self.wave_augment is not None:
            rng = np.random.default_rng((self.seed, self.rank, key.epoch, key.index))
        read = self.read([self.examples[i] for i in key.indices], rng, key.speeds or None)
        read.key = key
        return read

    def read(self, examples: Sequence[AnyExample], rng: np.random.Generator | None = None,
             speeds: Sequence[float] | None = None) -> ReadBatch:
        """The batch of ``examples`` in order (perturbed with ``rng`` when given, each at its
        factor of ``speeds`` when given)."""
        ready: list[AnyExample] = []
        unreadable: list[Unreadable] = []
        for n, example in enumerate(examples):
            if isinstance(example, Example):
                ready.append(example)
                continue
            if isinstance(example, LazyExample):
                try:
                    samples = load_utterance_audio(example.utterance, self.sample_rate)
                except AudioError as exc:
                    unreadable.append((example.utt_id, str(exc)))
                    continue
            else:
                samples = example.samples.numpy()
            speed = speeds[n] if speeds is not None else None
            ready.append(wave_example(example, samples, self.wave_augment, rng, speed))
        return ReadBatch(None, make_batch(ready) if ready else None, unreadable)


def wave_example(example: AnyExample, samples: np.ndarray, wave_augment=None,
                 rng: np.random.Generator | None = None, speed: float | None = None) -> WaveExample:
    """``example`` with the ``(time,)`` ``samples`` read for it, perturbed by ``wave_augment``
    with ``rng`` when one is given, at the speed factor ``speed`` (None: drawn from ``rng``);
    the frame count is then unknown: 0."""
    if rng is not None:
        wave_augment.rng = rng
        samples = wave_augment(samples, speed)
    return WaveExample(example.utt_id, torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)),
                       example.tokens, example.text, example.speaker, example.duration, 0)


_AFTER_DEATH = ("the run stopped, its last checkpoint is intact: run the same command again to resume "
                "(fewer train.num_workers if memory ran out)")


def _dead_worker(batches) -> LoaderError | None:
    """One line for the first DataLoader worker of ``batches`` (a DataLoader iterator) that is
    no longer alive; None when all are (or the iterator has no workers)."""
    for worker in getattr(batches, "_workers", []):
        if not worker.is_alive():
            code = worker.exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            return LoaderError(f"DataLoader worker (pid {worker.pid}) exited unexpectedly ({how}); {_AFTER_DEATH}")
    return None


def _worker_death(exc: BaseException) -> LoaderError | None:
    """One line for a dead DataLoader worker (None for other errors)."""
    text = str(exc)
    if "DataLoader worker" not in text:
        return None
    first = text.strip().splitlines()[0].rstrip(". ")
    return LoaderError(f"{first}; {_AFTER_DEATH}")


def read_batches(reader: BatchReader, keys: Sequence[BatchKey], num_workers: int = 0,
                 pin_memory: bool = False) -> Iterator[ReadBatch]:
    """``reader[key]`` for each key in order: by ``num_workers`` DataLoader processes, or with
    0 by one background thread that makes the next batch while the caller uses this one."""
    if not keys:
        return
    if num_workers <= 0:
        for _, read in prefetched(list(keys), reader.__getitem__):
            yield read.pin_memory() if pin_memory else read
        return
    loader = DataLoader(reader, batch_size=None, sampler=list(keys), num_workers=num_workers,
                        pin_memory=pin_memory, prefetch_factor=2)
    yield from loaded(loader)


def loaded(loader: DataLoader) -> Iterator:
    """The items of ``loader``, a dead worker turned into one :class:`LoaderError` line; the
    workers are shut down when the caller stops early."""
    batches = iter(loader)
    try:
        while True:
            try:
                item = next(batches)
            except StopIteration:
                return
            except (RuntimeError, OSError, EOFError) as exc:
                # A worker killed while sending a batch can also surface as a broken pipe or
                # socket (the tensors travel through shared-memory file descriptors).
                death = _worker_death(exc) or _dead_worker(batches)
                if death is None:
                    raise
                raise death from None
            yield item
    finally:
        del batches
