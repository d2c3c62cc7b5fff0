"""asr.data.batching: length-bucketed batches and padding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.data.batching import bucket_batches, collate
from asr.data.dataset import Example, ctc_min_frames


@settings(max_examples=50, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 500), min_size=0, max_size=60),
    max_frames=st.integers(1, 2000),
    max_utts=st.integers(1, 10),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_bucket_invariants(
    lengths: list[int], max_frames: int, max_utts: int, shuffle: bool, seed: int
) -> None:
    batches = bucket_batches(lengths, max_frames, max_utts, shuffle=shuffle, seed=seed)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))  # every index exactly once
    for batch in batches:
        assert batch, "no empty batches"
        assert len(batch) <= max_utts
        padded = len(batch) * max(lengths[i] for i in batch)
        # The frame bound holds except for a lone over-long utterance.
        assert padded <= max_frames or len(batch) == 1
        if len(batch) == 1 and padded > max_frames:
            assert lengths[batch[0]] > max_frames


def test_similar_lengths_grouped() -> None:
    lengths = [100, 10, 98, 12, 11, 99]
    assert bucket_batches(lengths, max_frames=300, max_utts=3) == [[1, 4, 3], [2, 5, 0]]
    # 3 x 100 = 300 frames fit in 300 but not in 299.
    assert bucket_batches(lengths, max_frames=299, max_utts=3) == [[1, 4, 3], [2, 5], [0]]


def test_overlong_singleton() -> None:
    assert bucket_batches([5, 1000, 6], max_frames=100, max_utts=8) == [[0, 2], [1]]


def test_deterministic_for_a_seed_and_seeds_differ() -> None:
    lengths = [(i * 37) % 200 + 1 for i in range(300)]
    first = bucket_batches(lengths, 400, 8, shuffle=True, seed=3)
    assert first == bucket_batches(lengths, 400, 8, shuffle=True, seed=3)
    other = bucket_batches(lengths, 400, 8, shuffle=True, seed=4)
    assert first != other
    # Shuffling reorders whole batches; their contents are the unshuffled ones.
    plain = bucket_batches(lengths, 400, 8)
    assert sorted(map(tuple, first)) == sorted(map(tuple, plain)) == sorted(map(tuple, other))
    assert first != plain
    assert len(plain) > 20


def _example(utt_id: str, frames: int, tokens: list[int]) -> Example:
    feats = torch.arange(frames * 3, dtype=torch.float32).reshape(frames, 3) + 1
    return Example(utt_id, feats, torch.tensor(tokens), "t", "s", frames / 100)


def test_collate_pads_with_zeros_and_concatenates_targets() -> None:
    examples = [_example("a", 4, [1, 2]), _example("b", 2, [3]), _example("c", 3, [4, 4, 5])]
    batch = collate(examples)
    assert batch.utt_ids == ["a", "b", "c"]
    assert batch.feats.shape == (3, 4, 3)
    assert batch.feat_lengths.tolist() == [4, 2, 3]
    assert torch.equal(batch.feats[1, :2], examples[1].feats)
    assert torch.equal(batch.feats[1, 2:], torch.zeros(2, 3))
    assert torch.equal(batch.feats[2, 3:], torch.zeros(1, 3))
    assert batch.targets.tolist() == [1, 2, 3, 4, 4, 5]
    assert batch.target_lengths.tolist() == [2, 1, 3]
    moved = batch.to(torch.device("cpu"))
    assert torch.equal(moved.feats, batch.feats)


@pytest.mark.parametrize(
    ("tokens", "frames"), [([], 0), ([1], 1), ([1, 2, 3], 3), ([1, 1], 3), ([1, 1, 1, 2, 2], 8)]
)
def test_ctc_min_frames(tokens: list[int], frames: int) -> None:
    assert ctc_min_frames(tokens) == frames
