"""Length-bucketed batches for one epoch, split over data-parallel ranks.

Every rank computes the same global list of batches (sorted by length, grouped under the frame
budget, shuffled with ``seed + epoch``), pads it by repeating its first batches to a multiple
of the number of ranks, and takes every ``world_size``-th batch from its rank on. So each rank
gets the same number of batches (a rank that ran out early would leave the others waiting in
an all-reduce forever), and each rank knows how many utterances every other rank has in any
update, which is what the loss is normalised by.

With ``speed_perturb`` the sampler also chooses each utterance's speed factor of the epoch
(:func:`asr.augment.speed_factors`, from ``seed`` and the epoch: the same on every rank) and
buckets the perturbed lengths, so a batch of utterances slowed to 0.9 still fits the frame
budget; the reader plays each utterance at the factor the sampler chose for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from asr.augment import perturbed_length, speed_factors
from asr.data.batching import bucket_batches


class BucketBatchSampler:
    """Batches of example indices for ``rank`` of ``world_size``; see the module docstring."""

    def __init__(
        self,
        lengths: Sequence[int],
        max_frames: int,
        max_utts: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        speed_perturb: bool = False,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.lengths = list(lengths)
        self.max_frames = max_frames
        self.max_utts = max_utts
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.speed_perturb = speed_perturb
        self._cache: tuple[int, list[list[int]]] | None = None

    def speeds(self, epoch: int) -> list[float] | None:
        """Each utterance's speed factor in ``epoch`` (None without ``speed_perturb``)."""
        if not self.speed_perturb:
            return None
        return speed_factors(self.seed, epoch, len(self.lengths))

    def global_batches(self, epoch: int) -> list[list[int]]:
        """All ranks' batches of ``epoch``, padded to a multiple of ``world_size``."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        lengths = self.lengths
        speeds = self.speeds(epoch)
        if speeds is not None:
            lengths = [perturbed_length(n, f) for n, f in zip(lengths, speeds, strict=True)]
        batches = bucket_batches(lengths, self.max_frames, self.max_utts, self.shuffle, self.seed + epoch)
        short = (-len(batches)) % self.world_size
        # A data set with fewer batches than ranks repeats batches more than once.
        batches = batches + [batches[i % len(batches)] for i in range(short)]
        self._cache = (epoch, batches)
        return batches

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch``: global batches ``rank, rank + W, rank + 2W, ...``."""
        return self.global_batches(epoch)[self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self.global_batches(0)) // self.world_size

    def update_utterances(self, epoch: int, first: int, count: int) -> int:
        """Utterances over all ranks in the update made of local batches
        ``first .. first + count - 1`` of ``epoch``."""
        batches = self.global_batches(epoch)
        window = batches[first * self.world_size : (first + count) * self.world_size]
        return sum(len(batch) for batch in window)
