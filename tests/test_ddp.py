"""Data parallel training: the bucketing sampler gives every rank the same number of batches,
and one DDP update on 2 CPU processes (gloo) equals one single-process update on the union of
both ranks' batches; a 2-rank epoch equals a single-process epoch with 2 accumulated batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st
from train_utils import assert_same_update, examples, tiny_config, tokenizer

from asr.train import DistInfo, Trainer
from asr.train.data import make_batch
from asr.train.sampler import BucketBatchSampler

TRAIN = examples(14, seed=4)
SGD = ("train.optimizer=sgd", "train.momentum=0.9", "train.lr=0.5", "train.clip_grad_norm=0")
FIT_TRAIN = examples(12, seed=4)  # 4 batches: 2 per rank, no padding batch
RANK_BATCHES = [list(range(0, 3)), list(range(3, 8))]  # 3 and 5 utterances: unequal on purpose


@given(
    lengths=st.lists(st.integers(1, 500), min_size=1, max_size=60),
    world=st.integers(1, 5),
    max_frames=st.integers(100, 2000),
    epoch=st.integers(0, 3),
)
@settings(max_examples=150, deadline=None)
def test_every_rank_gets_the_same_number_of_batches(lengths, world, max_frames, epoch) -> None:
    samplers = [BucketBatchSampler(lengths, max_frames, 8, seed=1, rank=r, world_size=world) for r in range(world)]
    per_rank = [s.batches(epoch) for s in samplers]
    assert len({len(b) for b in per_rank}) == 1
    assert all(len(s) == len(per_rank[0]) for s in samplers)
    # Together the ranks cover every utterance, each batch under the frame budget (or alone).
    covered = {i for batches in per_rank for batch in batches for i in batch}
    assert covered == set(range(len(lengths)))
    for batches in per_rank:
        for batch in batches:
            assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= max_frames
    # Every rank computes the same utterance count for each update.
    for first in range(len(per_rank[0])):
        counts = {s.update_utterances(epoch, first, 1) for s in samplers}
        assert counts == {sum(len(b[first]) for b in per_rank)}


def _init(rank: int, store: str) -> DistInfo:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    return DistInfo(rank=rank, world_size=2, local_rank=rank)


def _one_step(rank: int, store: str, out: str) -> None:
    info = _init(rank, store)
    try:
        trainer = Trainer(tiny_config(*SGD), Path(out) / "exp", tokenizer(), TRAIN, [], progress=False, dist=info)
        batch = make_batch([TRAIN[i] for i in RANK_BATCHES[rank]])
        result = trainer.train_step([batch], utterances=8, progress=0.0)
        assert result.updated
        torch.save({k: v.detach().clone() for k, v in trainer.model.state_dict().items()}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_one_ddp_step_equals_one_step_on_the_union(tmp_path: Path) -> None:
    mp.spawn(_one_step, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    single = Trainer(tiny_config(*SGD), tmp_path / "single", tokenizer(), TRAIN, [], progress=False)
    before = {k: v.clone() for k, v in single.model.state_dict().items()}
    union = make_batch([TRAIN[i] for i in RANK_BATCHES[0] + RANK_BATCHES[1]])
    single.train_step([union], utterances=8, progress=0.0)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    reference = single.model.state_dict()
    # The ranks sum their 3 and 5 utterances apart and all-reduce: float32 sums in another
    # order than the union's (the first update: momentum has nothing to carry yet).
    frames = int(union.feat_lengths.sum())
    assert_same_update(rank0, reference, before, frames)
    for key in reference:
        # Both ranks apply the same all-reduced gradient to the same weights on this machine.
        torch.testing.assert_close(rank1[key], rank0[key], atol=0, rtol=0, msg=key)
    moved = max((reference[k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-3
    # Rank 0's batch alone gives a different update: the ranks' gradients were really combined.
    alone = Trainer(tiny_config(*SGD), tmp_path / "alone", tokenizer(), TRAIN, [], progress=False)
    alone.train_step([make_batch([TRAIN[i] for i in RANK_BATCHES[0]])], utterances=3, progress=0.0)
    with pytest.raises(AssertionError):
        assert_same_update(alone.model.state_dict(), rank0, before, frames)


def _fit(rank: int, store: str, out: str) -> None:
    info = _init(rank, store)
    try:
        config = tiny_config(*SGD, "train.epochs=1", "train.lr=0.1", "train.keep_last=1")
        dev = examples(3, seed=9, prefix="d")
        trainer = Trainer(config, Path(out) / "ddp", tokenizer(), FIT_TRAIN, dev, progress=False, dist=info)
        trainer.fit(resume=False)
        torch.save(trainer.history, Path(out) / f"history{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_rank_epoch_equals_accumulating_two_batches(tmp_path: Path) -> None:
    """Rank r trains on global batches r, r + 2, ...; one process accumulating batch pairs
    (2u, 2u + 1) makes the same updates. Only rank 0 writes files; both agree on dev numbers."""
    mp.spawn(_fit, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    config = tiny_config(*SGD, "train.epochs=1", "train.lr=0.1", "train.accum_grad=2")
    single = Trainer(config, tmp_path / "single", tokenizer(), FIT_TRAIN, examples(3, seed=9, prefix="d"), progress=False)
    assert len(single.sampler.batches(0)) == 4  # no padding batch: the runs are comparable
    before = {k: v.clone() for k, v in single.model.state_dict().items()}
    single.fit(resume=False)
    ddp_weights = torch.load(tmp_path / "ddp" / "checkpoints" / "epoch-1.pt", weights_only=True)["model"]
    # 2 updates with momentum 0.9, each gradient summed in another order (per rank, then
    # all-reduced); every frame of the epoch bounds the frames of one update.
    frames = sum(e.feats.shape[0] for e in FIT_TRAIN)
    assert_same_update(ddp_weights, single.model.state_dict(), before, frames, updates=2, momentum=0.9)
    h0, h1 = (torch.load(tmp_path / f"history{r}.pt", weights_only=True) for r in (0, 1))
    assert h0[0]["dev_loss"] == h1[0]["dev_loss"]  # all-reduced: the same number on both ranks
    # The dev loss sums ~80 frames (80 * EPS32 ~ 5e-6 relative) with weights that agree to the
    # bound above (~1e-4 of their movement, which itself is small); 1e-4 leaves >10x.
    assert h0[0]["dev_loss"] == pytest.approx(single.history[0]["dev_loss"], rel=1e-4)
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["checkpoints", "config.yaml", "final", "progress.json", "tb", "tokens.txt"]


@pytest.mark.slow
def test_torchrun_two_cpu_processes_end_to_end(tmp_path: Path) -> None:
    """``torchrun --nproc_per_node=2 -m asr.cli.main train`` on CPU: one train.log, one set of
    checkpoints and a model directory, written by rank 0."""
    import subprocess
    import sys

    import numpy as np
    import soundfile as sf

    from asr.data import Utterance, write_data_dir

    utts = []
    for i in range(8):
        t = np.arange(int((0.4 + 0.05 * i) * 8000)) / 8000
        path = tmp_path / f"s{i}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32), 8000)
        utts.append(Utterance(f"s{i}", str(path), ["ab", "ba", "abc", "cab"][i % 4], "s"))
    data = write_data_dir(tmp_path / "data", utts).path
    exp = tmp_path / "exp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "asr.cli.main", "train",
           "--train", str(data), "--dev", str(data), "--exp-dir", str(exp), "--no-progress"]
    for override in ("features.sample_rate=8000", "features.n_mels=8", "model.num_layers=1",
                     "model.hidden_size=4", "train.epochs=2", "train.device=cpu",
                     "train.max_frames_per_batch=200", "train.num_threads=1"):
        cmd += ["--set", override]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (exp / "train.log").read_text()
    assert "x 2 ranks" in log and log.count("epoch 2:") == 1 and "exported model" in log
    assert (exp / "checkpoints" / "epoch-2.pt").is_file() and (exp / "final" / "model.pt").is_file()
