"""Training batches streamed from WebDataset shards (``train.shards``) instead of read per
utterance from the data directory.

:class:`ShardBatches` streams one epoch of this rank's shards (:class:`~asr.data.shards.ShardStream`:
shards by rank, then by DataLoader worker) through ``train.num_workers`` DataLoader workers.
Each worker fills a buffer of ``train.shard_buffer`` utterances, sorts it by length and cuts
it into batches under ``train.max_frames_per_batch`` / ``train.max_utts_per_batch``
(:func:`~asr.data.batching.bucket_batches` of the lengths at the speed factors chosen for the
buffer, its batches shuffled with a seed from ``(seed, rank, epoch, worker, buffer number)``),
plays each utterance at its factor, adds noise with a generator seeded from ``(seed, rank,
epoch, worker, batch number)`` and pads them: the loop
gets :class:`~asr.train.reader.ReadBatch` es, as from the data-dir reader.

The lazy examples of the data directory (metadata only) say which utterances train and with
which tokens and frame counts: an utterance of the shards that is not among them (too long,
too short for its transcript, empty text, unreadable at start-up) is skipped.

The stream of an epoch depends on ``(seed, epoch, world_size, num_workers)`` and on the shards
alone, so a resumed run re-streams the epoch and skips the batches it has trained on. Ranks
may stream different numbers of batches: :meth:`TrainingData.updates
<asr.train.pipeline.TrainingData.updates>` all-reduces each update's utterance count and ends
the epoch on every rank as soon as one rank has no batch left (the rest is dropped and logged).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from asr.augment import perturbed_length, speed_factors
from asr.config import ExperimentConfig
from asr.data.batching import bucket_batches
from asr.errors import AsrError
from asr.train import ddp
from asr.train.data import make_batch
from asr.train.lazy import LazyExample
from asr.train.reader import BatchKey, ReadBatch, loaded, wave_example

log = logging.getLogger("asr.train")


def shard_root(shards: str | Path) -> Path:
    """The shard directory of ``train.shards`` (a directory or its ``shards.yaml``)."""
    from asr.data.shards import MANIFEST

    path = Path(shards)
    return path.parent if path.name == MANIFEST and not path.is_dir() else path


def _int_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@dataclass
class StreamedBatch(ReadBatch):
    """A batch of the stream and how many stream utterances it stands for (its own and those
    skipped before it), for the count of what an epoch's end leaves out."""

    consumed: int = 0

    def pin_memory(self) -> StreamedBatch:
        pinned = super().pin_memory()
        return StreamedBatch(pinned.key, pinned.batch, pinned.unreadable, self.consumed)


class _BatchStream(IterableDataset):
    """The batches of one epoch of a :class:`ShardStream`, made in the worker that reads it."""

    def __init__(self, stream, examples: dict[str, LazyExample], max_frames: int, max_utts: int,
                 buffer: int, wave_augment, seed: int, rank: int, epoch: int) -> None:
        super().__init__()
        self.stream = stream
        self.examples = examples
        self.max_frames = max_frames
        self.max_utts = max_utts
        self.buffer = max(int(buffer), 1)
        self.wave_augment = wave_augment
        self.seed = seed
        self.rank = rank
        self.epoch = epoch

    def __iter__(self) -> Iterator[StreamedBatch]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        buffer: list[tuple[np.ndarray, LazyExample]] = []
        state = {"buffers": 0, "batches": 0, "skipped": 0, "unreadable": []}
        for utt in self.stream:
            example = self.examples.get(utt.utt_id)
            if example is None:  # filtered out at start-up (or not in this data dir)
                state["skipped"] += 1
                continue
            if utt.error is not None:  # reported with the next batch, counted by the trainer
                state["skipped"] += 1
                state["unreadable"].append((utt.utt_id, utt.error))
                continue
            samples = utt.samples.numpy() if isinstance(utt.samples, torch.Tensor) else utt.samples
            buffer.append((samples, example))
            if len(buffer) >= self.buffer:
                yield from self._flush(buffer, worker, state)
                buffer = []
        if buffer:
            yield from self._flush(buffer, worker, state)
        if state["unreadable"]:  # after the last batch: reported without one
            yield StreamedBatch(None, None, state["unreadable"], state["skipped"])

    def _flush(self, buffer: list[tuple[np.ndarray, LazyExample]], worker: int, state: dict) -> Iterator[StreamedBatch]:
        lengths = [example.num_frames for _, example in buffer]
        seed = _int_seed(self.seed, self.rank, self.epoch, worker, state["buffers"])
        state["buffers"] += 1
        speeds: list[float | None] = [None] * len(buffer)
        if self.wave_augment is not None and self.wave_augment.config.speed_perturb:
            # Chosen before bucketing, so that the batches fit the budget at the new lengths.
            speeds = list(speed_factors(seed, self.epoch, len(buffer)))
            lengths = [perturbed_length(n, f) for n, f in zip(lengths, speeds, strict=True)]
        for indices in bucket_batches(lengths, self.max_frames, self.max_utts, shuffle=True, seed=seed):
            rng = None
            if self.wave_augment is not None:
                rng = np.random.default_rng((self.seed, self.rank, self.epoch, worker, state["batches"]))
            ready = [wave_example(buffer[i][1], buffer[i][0], self.wave_augment, rng, speeds[i]) for i in indices]
            key = BatchKey(self.epoch, state["batches"], ())
            state["batches"] += 1
            consumed, state["skipped"] = len(ready) + state["skipped"], 0
            unreadable, state["unreadable"] = state["unreadable"], []
            yield StreamedBatch(key, make_batch(ready), unreadable, consumed)


class ShardBatches:
    """This rank's batches of the shards ``train.shards``; see the module docstring."""

    def __init__(self, config: ExperimentConfig, examples: Sequence[LazyExample], wave_augment,
                 dist: ddp.DistInfo, pin_memory: bool = False) -> None:
        from asr.data.shards import ShardStream

        tc = config.train
        assert tc.shards is not None
        if examples and not isinstance(examples[0], LazyExample):
            raise AsrError("train.shards: needs train.features_on_the_fly: true and train.preload: false")
        self.tc = tc
        self.dist = dist
        self.wave_augment = wave_augment
        self.pin_memory = pin_memory
        self.examples = {e.utt_id: e for e in examples}
        self.lengths = [e.num_frames for e in examples]
        self.stream = ShardStream(shard_root(tc.shards), dist.rank, dist.world_size, tc.seed)
        rate = config.features.sample_rate
        if self.stream.sample_rate is not None and self.stream.sample_rate != rate:
            raise AsrError(f"{tc.shards}: shards at {self.stream.sample_rate} Hz but features.sample_rate "
                           f"is {rate}; rerun `asr data make-shards --sample-rate {rate}`")
        self._estimate: int | None = None

    def rank_utterances(self, epoch: int) -> int:
        """Utterances of this rank's shards in ``epoch`` (from the manifest)."""
        count = self.stream.rank_utterances(epoch)
        return int(count) if count is not None else 0

    def estimated_batches(self) -> int:
        """About how many batches a rank streams per epoch: the same number on every rank
        (it places the epoch's updates in the cosine schedule), from the examples' frame
        counts bucketed in buffers as the workers do."""
        if self._estimate is None:
            world, workers = self.dist.world_size, max(self.tc.num_workers, 1)
            order = np.random.default_rng(self.tc.seed).permutation(len(self.lengths))
            buffer, total = max(self.tc.shard_buffer, 1), 0
            for group in range(world * workers):
                mine = order[group::world * workers]
                for start in range(0, len(mine), buffer):
                    lengths = [self.lengths[i] for i in mine[start:start + buffer]]
                    total += len(bucket_batches(lengths, self.tc.max_frames_per_batch, self.tc.max_utts_per_batch))
            self._estimate = max(1, math.ceil(total / world))
        return self._estimate

    def reads(self, epoch: int) -> Iterator[StreamedBatch]:
        """This rank's batches of ``epoch`` in stream order (the DataLoader's round robin over
        its workers)."""
        self.stream.set_epoch(epoch)
        dataset = _BatchStream(self.stream, self.examples, self.tc.max_frames_per_batch,
                               self.tc.max_utts_per_batch, self.tc.shard_buffer, self.wave_augment,
                               self.tc.seed, self.dist.rank, epoch)
        workers = max(self.tc.num_workers, 0)
        loader = DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=self.pin_memory,
                            prefetch_factor=2 if workers > 0 else None)
        yield from loaded(loader)
