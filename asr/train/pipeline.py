"""The trainer's data pipeline: which batches each update gets, read by the data loader, and
the bookkeeping of what could not be read.

:class:`TrainingData` owns the bucketing sampler (this rank's share of each epoch's batches),
the :class:`~asr.train.reader.BatchReader` of the training and dev sets, the sample global
CMVN is estimated on, and the list of unreadable utterances (``EXP/bad_utts``), agreed across
data-parallel ranks and limited by ``train.max_bad_utts``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from asr.config import ExperimentConfig
from asr.errors import DataDirError
from asr.train import ddp
from asr.train.data import AnyBatch, AnyExample, num_frames
from asr.train.reader import BatchKey, BatchReader, ReadBatch, Unreadable, read_batches
from asr.train.sampler import BucketBatchSampler
from asr.train.streaming import ShardBatches
from asr.utils import atomic_write_text

log = logging.getLogger("asr.train")


class TrainingData:
    """Batches of the training and dev sets for one rank; see the module docstring."""

    def __init__(self, config: ExperimentConfig, train_set: Sequence[AnyExample],
                 dev_set: Sequence[AnyExample], wave_augment, dist: ddp.DistInfo,
                 exp_dir: Path, unreadable: Sequence[Unreadable] = (), pin_memory: bool = False) -> None:
        tc = config.train
        self.tc = tc
        self.train_set = list(train_set)
        self.dev_set = list(dev_set)
        self.dist = dist
        self.exp_dir = exp_dir
        self.pin_memory = pin_memory
        self.sampler = BucketBatchSampler(
            [num_frames(e) for e in self.train_set], tc.max_frames_per_batch, tc.max_utts_per_batch,
            seed=tc.seed, rank=dist.rank, world_size=dist.world_size,
            speed_perturb=wave_augment is not None and config.augment.speed_perturb,
        )
        rate = config.features.sample_rate
        self.reader = BatchReader(self.train_set, rate, wave_augment, tc.seed, dist.rank)
        self.dev_reader = BatchReader(self.dev_set, rate)
        # train.shards: the training batches stream from WebDataset shards (asr.train.streaming).
        self.shards = None
        if tc.shards:
            self.shards = ShardBatches(config, self.train_set, wave_augment, dist, pin_memory)
            self.device = ddp.collective_device(dist)
        self._update_counts: dict[tuple[int, int], int] = {}  # streamed: (epoch, first) -> utterances
        # Utterances left out as unreadable: while loading (given) and when read for a batch.
        self.unreadable: list[Unreadable] = list(unreadable)
        self._new: list[Unreadable] = []
        self.wait_s = 0.0  # seconds the loop has waited for the data loader's batches

    # -- training batches --------------------------------------------------------------------

    def updates(self, epoch: int, start: int, limit: int | None = None) -> Iterator[tuple[int, int, list[AnyBatch]]]:
        """``(first local batch, batch count, batches)`` of each update of ``epoch`` from local
        batch ``start`` on (at most ``limit`` updates). A batch none of whose utterances could
        be read is left out of its update (under DDP it stops the run: every rank must take
        part in every update)."""
        if self.shards is not None:
            yield from self._streamed_updates(epoch, start, limit)
            return
        accum = self.tc.accum_grad
        local = self.sampler.batches(epoch)
        firsts = list(range(start, len(local), accum))[:limit]
        if not firsts:
            return
        stop = min(firsts[-1] + accum, len(local))
        speeds = self.sampler.speeds(epoch)
        keys = [BatchKey(epoch, i, tuple(local[i]), tuple(speeds[j] for j in local[i]) if speeds else ())
                for i in range(firsts[0], stop)]
        reads = read_batches(self.reader, keys, self.tc.num_workers, self.pin_memory)
        first, pending = firsts[0], []
        while True:
            waited = time.perf_counter()
            read = next(reads, None)
            self.wait_s += time.perf_counter() - waited
            if read is None:
                return
            assert read.key is not None
            self.note_unreadable(read)
            if read.batch is not None:
                pending.append(read.batch)
            elif self.dist.enabled:
                raise DataDirError(f"no utterance of batch {read.key.index} of epoch {epoch + 1} "
                                   f"could be read on rank {self.dist.rank}: see the warnings above")
            end = min(first + accum, stop)
            if read.key.index + 1 == end:
                yield first, end - first, pending
                first, pending = end, []

    def _streamed_updates(self, epoch: int, start: int, limit: int | None) -> Iterator[tuple[int, int, list[AnyBatch]]]:
        """:meth:`updates` from the shards. Every rank takes its next ``accum_grad`` batches
        and all-reduce ``[has a batch, utterances]``: the sum is the update's normalisation
        (:meth:`update_utterances`), and the epoch ends on every rank as soon as one has no
        batch left; what the other ranks still had is dropped (logged). Resuming at local
        batch ``start`` re-streams the epoch and skips its first ``start`` batches."""
        assert self.shards is not None
        accum, world = self.tc.accum_grad, self.dist.world_size
        reads = self.shards.reads(epoch)
        consumed = 0  # stream utterances of the batches trained on (or skipped on resume)
        index = updates = 0
        try:
            while index < start:
                read = next(reads, None)
                if read is None:
                    break
                consumed += read.consumed
                if read.batch is not None:
                    index += 1
            while limit is None or updates < limit:
                pending: list[AnyBatch] = []
                utterances = streamed = 0
                waited = time.perf_counter()
                while len(pending) < accum:
                    read = next(reads, None)
                    if read is None:
                        break
                    self.note_unreadable(read)
                    streamed += read.consumed
                    if read.batch is None:  # only what could not be decoded
                        continue
                    pending.append(read.batch)
                    utterances += len(read.batch.utt_ids)
                self.wait_s += time.perf_counter() - waited
                ranks_with, total = ddp.sum_across_ranks([1.0 if pending else 0.0, utterances], self.dist, self.device)
                if ranks_with < world:
                    self._log_dropped(epoch, consumed)
                    return
                self._update_counts = {(epoch, index): int(total)}
                consumed += streamed
                updates += 1
                yield index, len(pending), pending
                index += len(pending)
        finally:
            reads.close()

    def _log_dropped(self, epoch: int, consumed: int) -> None:
        """At an epoch's end from the shards: how many utterances of each rank's shards were
        not trained on because another rank's stream ended first (every rank calls it)."""
        assert self.shards is not None
        left = max(self.shards.rank_utterances(epoch) - consumed, 0)
        counts = ddp.all_gather(left, self.dist)
        if self.dist.enabled and any(counts):
            log.info("epoch %d: a rank's shards ran out first; %d utterance(s) of the other ranks' "
                     "shards not trained on this epoch (per rank: %s)", epoch + 1, sum(counts),
                     ", ".join(str(c) for c in counts))

    def local_batches(self, epoch: int) -> int:
        """This rank's batches of ``epoch`` (from the shards: an estimate, the same on every
        rank)."""
        if self.shards is not None:
            return self.shards.estimated_batches()
        return len(self.sampler.batches(epoch))

    def update_utterances(self, epoch: int, first: int, count: int) -> int:
        """Utterances over all ranks in the update of ``count`` batches from local batch
        ``first`` (from the shards: the count all-reduced when :meth:`updates` yielded it)."""
        if self.shards is not None:
            return self._update_counts[(epoch, first)]
        return self.sampler.update_utterances(epoch, first, count)

    # -- global CMVN -------------------------------------------------------------------------

    def cmvn_sample(self) -> list[int]:
        """Indices of the training utterances global CMVN is estimated on: all of them, or
        ``train.cmvn_max_utts`` drawn with the run's seed (the same on every rank)."""
        count, limit = len(self.train_set), self.tc.cmvn_max_utts
        if limit <= 0 or count <= limit:
            return list(range(count))
        generator = torch.Generator().manual_seed(self.tc.seed)
        return sorted(torch.randperm(count, generator=generator)[:limit].tolist())

    def unperturbed_batches(self, examples: Sequence[AnyExample]) -> Iterator[AnyBatch]:
        """Unperturbed host batches of any ``examples`` (training or dev), in length order;
        unreadable ones are noted (see :meth:`check_unreadable`)."""
        lengths = [num_frames(example) for example in examples]
        order = BucketBatchSampler(lengths, self.tc.max_frames_per_batch, self.tc.max_utts_per_batch, shuffle=False)
        for indices in order.global_batches(0):
            read = self.dev_reader.read([examples[i] for i in indices])
            self.note_unreadable(read)
            if read.batch is not None:
                yield read.batch

    # -- dev ---------------------------------------------------------------------------------

    def read(self, examples: Sequence[AnyExample]) -> AnyBatch | None:
        """The unperturbed batch of any examples (for evaluation); None if none was readable."""
        read = self.dev_reader.read(examples)
        self.note_unreadable(read)
        return read.batch

    # -- unreadable audio --------------------------------------------------------------------

    def note_unreadable(self, read: ReadBatch) -> None:
        """Remember what a batch left out; new ones are logged (and counted at the check)."""
        known = {utt for utt, _ in self.unreadable}
        for utt_id, error in read.unreadable:
            if utt_id not in known:
                log.warning("utterance %s: %s (skipped)", utt_id, error)
                self.unreadable.append((utt_id, error))
                self._new.append((utt_id, error))
                known.add(utt_id)

    def check_unreadable(self) -> None:
        """Agree on the unreadable utterances across ranks (their union), list them in
        ``EXP/bad_utts`` and stop, on every rank alike, past ``train.max_bad_utts``. Every
        rank must call it at the same point."""
        new = self._new
        if self.dist.enabled:
            gathered = ddp.all_gather(new, self.dist)
            known = {utt for utt, _ in self.unreadable}
            for rank, found in enumerate(gathered):
                for utt_id, error in found:
                    if utt_id not in known:
                        self.unreadable.append((utt_id, f"rank {rank}: {error}"))
                        known.add(utt_id)
            new = [item for found in gathered for item in found]
        self._new = []
        if not new:
            return
        if self.dist.is_main:
            atomic_write_text(self.exp_dir / "bad_utts", "".join(f"{u} {e}\n" for u, e in self.unreadable))
        limit = self.tc.max_bad_utts
        if 0 <= limit < len(self.unreadable):
            raise DataDirError(
                f"{len(self.unreadable)} utterance(s) with unreadable audio (first "
                f"'{self.unreadable[0][0]}', listed in {self.exp_dir / 'bad_utts'}), more than "
                f"--max-bad-utts {limit}; fix or drop them (asr data fix) or raise --max-bad-utts"
            )
