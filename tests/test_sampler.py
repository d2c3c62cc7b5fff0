"""The length-bucketed sampler (and the shard stream's buffers) with speed perturbation: each
utterance's factor of an epoch is chosen before the bucketing, which uses the perturbed
lengths, the same on every rank."""

from __future__ import annotations

import numpy as np

from asr.augment import SPEED_FACTORS, perturbed_length
from asr.train.sampler import BucketBatchSampler

LENGTHS = np.random.default_rng(0).integers(50, 400, size=300).tolist()
MAX_FRAMES, MAX_UTTS = 2000, 64


def _longest(batch: list[int], lengths: list[int]) -> int:
    return max(lengths[i] for i in batch)


def test_bucketing_uses_the_perturbed_lengths() -> None:
    sampler = BucketBatchSampler(LENGTHS, MAX_FRAMES, MAX_UTTS, seed=3, speed_perturb=True)
    for epoch in range(3):
        speeds = sampler.speeds(epoch)
        assert speeds is not None and len(speeds) == len(LENGTHS) and set(speeds) == set(SPEED_FACTORS)
        perturbed = [perturbed_length(n, f) for n, f in zip(LENGTHS, speeds, strict=True)]
        batches = sampler.global_batches(epoch)
        assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
        assert all(len(b) * _longest(b, perturbed) <= MAX_FRAMES for b in batches)
        # Bucketed on the unperturbed lengths, some batch would exceed the budget once played
        # at these factors (the 0.9 ones are 11 % longer).
        plain = BucketBatchSampler(LENGTHS, MAX_FRAMES, MAX_UTTS, seed=3).global_batches(epoch)
        assert any(len(b) * _longest(b, perturbed) > MAX_FRAMES for b in plain)
    assert sampler.speeds(0) != sampler.speeds(1)
    assert BucketBatchSampler(LENGTHS, MAX_FRAMES, MAX_UTTS, seed=3).speeds(0) is None


def test_every_rank_chooses_the_same_factors_and_covers_the_set() -> None:
    ranks = [BucketBatchSampler(LENGTHS, MAX_FRAMES, MAX_UTTS, seed=3, rank=r, world_size=2, speed_perturb=True)
             for r in range(2)]
    single = BucketBatchSampler(LENGTHS, MAX_FRAMES, MAX_UTTS, seed=3, speed_perturb=True)
    assert ranks[0].speeds(2) == ranks[1].speeds(2) == single.speeds(2)
    mine = [set(i for b in r.batches(2) for i in b) for r in ranks]
    assert mine[0] | mine[1] == set(range(len(LENGTHS)))
    assert len(ranks[0].batches(2)) == len(ranks[1].batches(2))


def test_the_shard_stream_buckets_each_buffer_at_its_speed_factors() -> None:
    """A worker's buffer is cut into batches of the perturbed lengths and played at them."""
    import torch

    from asr.augment import WaveformAugment, speed_factors
    from asr.config import AugmentConfig
    from asr.data.shards import ShardUtterance
    from asr.data.utterance import Utterance
    from asr.train.lazy import LazyExample
    from asr.train.streaming import _BatchStream, _int_seed

    hop = 80  # samples per frame (10 ms at 8 kHz)
    rng = np.random.default_rng(1)
    frames = rng.integers(50, 400, size=40).tolist()
    stream, examples = [], {}
    for i, n in enumerate(frames):
        utt = f"u{i:02d}"
        stream.append(ShardUtterance(utt, rng.standard_normal(n * hop).astype(np.float32) * 0.1, "a", "s", n / 100))
        examples[utt] = LazyExample(utt, Utterance(utt, "x.wav", "a", "s"), torch.tensor([1]), "a", "s", n / 100, n)
    augment = WaveformAugment(AugmentConfig(speed_perturb=True), 8000)
    batches = list(_BatchStream(stream, examples, max_frames=2000, max_utts=64, buffer=40,
                                wave_augment=augment, seed=3, rank=0, epoch=1))
    speeds = speed_factors(_int_seed(3, 0, 1, 0, 0), 1, 40)  # worker 0's first buffer
    index = {f"u{i:02d}": i for i in range(40)}
    seen = []
    for read in batches:
        ids = read.batch.utt_ids
        seen += ids
        assert len(ids) * max(perturbed_length(frames[index[u]], speeds[index[u]]) for u in ids) <= 2000
        for utt, length in zip(ids, read.batch.wave_lengths.tolist(), strict=True):
            assert abs(length - perturbed_length(frames[index[utt]] * hop, speeds[index[utt]])) <= 1
    assert sorted(seen) == sorted(index)
