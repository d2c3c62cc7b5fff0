"""CUDA out-of-memory during training, injected on the CPU: the update is retried with its
batches split (the same update, to rounding), skipped when single utterances do not fit, and
the run stops with one line after ``train.max_oom_batches`` events. The real allocator is
exercised by the GPU test at the end."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from train_utils import EPS32, assert_same_update, examples, tiny_config, tokenizer, weights

from asr.errors import AsrError
from asr.train import Trainer
from asr.train.data import WaveExample, make_batch
from asr.train.oom import OomPolicy, OutOfMemoryLimit, split_batch

TRAIN = examples(12, seed=5)
SGD = ("train.optimizer=sgd", "train.momentum=0.0", "train.lr=0.5", "train.clip_grad_norm=0")


class OomAbove:
    """Stands in for the network: raises CUDA's out-of-memory error for batches of more than
    ``limit`` utterances, as a GPU of too little memory would; counts the calls."""

    def __init__(self, net, limit: int) -> None:
        self.net, self.limit, self.sizes = net, limit, []

    def __call__(self, feats, lengths, **kwargs):
        self.sizes.append(feats.shape[0])
        if feats.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.net(feats, lengths, **kwargs)


def _trainer(tmp_path: Path, *overrides: str) -> Trainer:
    return Trainer(tiny_config(*SGD, *overrides), tmp_path, tokenizer(), TRAIN, [], progress=False)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 12), pieces=st.integers(1, 16), waves=st.booleans())
def test_split_batch_keeps_every_utterance_once(size, pieces, waves):
    chosen = TRAIN[:size]
    if waves:
        chosen = [WaveExample(e.utt_id, e.feats[:, 0].contiguous(), e.tokens, e.text, e.speaker,
                              e.duration, e.feats.shape[0]) for e in chosen]
    batch = make_batch(chosen)
    parts = split_batch(batch, pieces)
    assert len(parts) == min(pieces, size)
    assert [u for p in parts for u in p.utt_ids] == batch.utt_ids
    assert torch.equal(torch.cat([p.targets for p in parts]), batch.targets)
    assert torch.equal(torch.cat([p.target_lengths for p in parts]), batch.target_lengths)
    for part in parts:
        for row, utt in enumerate(part.utt_ids):
            example = chosen[batch.utt_ids.index(utt)]
            if waves:
                length = int(part.wave_lengths[row])
                assert torch.equal(part.waves[row, :length], example.samples)
                assert part.waves.shape[1] == int(part.wave_lengths.max())  # padding trimmed
            else:
                length = int(part.feat_lengths[row])
                assert torch.equal(part.feats[row, :length], example.feats)
                assert part.feats.shape[1] == int(part.feat_lengths.max())


def test_oom_splits_the_batch_and_makes_the_same_update(tmp_path, caplog):
    batches = [make_batch(TRAIN[:5]), make_batch(TRAIN[5:8])]
    reference = _trainer(tmp_path / "a", "train.accum_grad=2")
    before = weights(reference.model)
    expected = reference.train_step(batches, utterances=8, progress=0.0)
    split = _trainer(tmp_path / "b", "train.accum_grad=2")
    split.net = OomAbove(split.net, limit=2)
    with caplog.at_level(logging.WARNING, logger="asr.train"):
        result = split.train_step(batches, utterances=8, progress=0.0)
    assert result.updated and result.utterances == 8 and result.skipped == 0
    # Pieces of 1-2 utterances instead of 5 and 3: other padding and matmul shapes, so float32
    # sums in another order. The loss is a sum over all frames of same-sign float32 terms:
    # off by <= frames * EPS32 relative (the 2-layer recurrence behind each term adds less);
    # a dropped or doubled utterance would move it by ~1/8.
    frames = sum(e.feats.shape[0] for e in TRAIN[:8])
    assert math.isclose(result.loss, expected.loss, rel_tol=frames * EPS32)
    assert_same_update(weights(split.model), weights(reference.model), before, frames)
    # 5 and 3 utterances fail; halves (3+2, 2+1) still fail on the 3; quarters fit.
    assert split.oom.events == 2 and split.oom.skipped_updates == 0
    assert max(split.net.sizes[-6:]) <= 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("out of memory on 5 utterance(s)" in m and "retrying in 2 pieces" in m for m in messages)
    assert any("retrying in 4 pieces" in m for m in messages)


def test_oom_on_single_utterances_skips_the_update_then_stops_at_the_limit(tmp_path, caplog):
    trainer = _trainer(tmp_path, "train.max_oom_batches=3")
    trainer.net = OomAbove(trainer.net, limit=0)  # nothing fits
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with caplog.at_level(logging.WARNING, logger="asr.train"):
        result = trainer.train_step([make_batch(TRAIN[:4])], utterances=4, progress=0.0)
    assert not result.updated and result.skipped == 1 and trainer.global_step == 0
    assert all(torch.equal(p, q) for p, q in zip(trainer.model.parameters(), before, strict=True))
    assert trainer.oom.events == 3 and trainer.oom.skipped_updates == 1
    assert any("even one utterance at a time" in r.getMessage() for r in caplog.records)
    with pytest.raises(OutOfMemoryLimit) as info:
        trainer.train_step([make_batch(TRAIN[4:8])], utterances=4, progress=0.0)
    message = str(info.value)
    assert isinstance(info.value, AsrError) and "\n" not in message
    assert "out of memory 4 times, more than train.max_oom_batches 3" in message
    assert "lower train.max_frames_per_batch" in message


def test_a_run_with_oom_batches_completes(tmp_path, caplog):
    trainer = _trainer(tmp_path, "train.epochs=2")
    trainer.net = OomAbove(trainer.net, limit=2)
    with caplog.at_level(logging.WARNING, logger="asr.train"):
        final = trainer.fit()
    assert (final / "model.pt").is_file() and trainer.epoch == 2
    assert 0 < trainer.oom.events <= trainer.tc.max_oom_batches
    assert trainer.history[-1]["skipped_batches"] == 0  # every batch trained, in pieces
    assert sum("out of memory" in r.getMessage() for r in caplog.records) == trainer.oom.events


def test_oom_under_ddp_is_one_line_error():
    policy = OomPolicy(limit=10, distributed=True)
    batch = make_batch(TRAIN[:2])
    with pytest.raises(OutOfMemoryLimit, match=f"out of memory on a batch of {TRAIN[0].utt_id}"):
        policy.next_pieces([batch], 1, 7, "CUDA out of memory.")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_real_cuda_oom_is_split(tmp_path):
    """A batch whose activations cannot fit in the GPU's memory is trained in pieces."""
    free, _ = torch.cuda.mem_get_info()
    # Hold all but ~1.5 GiB so that a big batch of long utterances cannot fit.
    hog = torch.empty(max(free - (3 << 29), 0), dtype=torch.uint8, device="cuda")
    try:
        long = examples(64, seed=1)
        long = [type(e)(e.utt_id, e.feats.repeat(400, 1), e.tokens, e.text, e.speaker, e.duration)
                for e in long]
        trainer = Trainer(tiny_config("train.device=cuda", "model.hidden_size=512", *SGD), tmp_path,
                          tokenizer(), long, [], progress=False)
        result = trainer.train_step([make_batch(long)], utterances=len(long), progress=0.0)
        assert trainer.oom.events >= 1
        assert result.updated or result.skipped == 1
    finally:
        del hog
        torch.cuda.empty_cache()
