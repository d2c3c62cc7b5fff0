"""Data parallel training: the bucketing sampler gives every rank the same number of batches,
and one DDP update on 2 CPU processes (gloo) equals one single-process update on the union of
both ranks' batches; a 2-rank epoch equals a single-process epoch with 2 accumulated batches.
At start-up the ranks drop every utterance any of them could not read and stop with one line
when their data still differ; torchrun on one node and on two "nodes" (localhost) trains."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from gloo_ranks import finish_rank, init_rank
from hypothesis import given, settings
from hypothesis import strategies as st
from train_utils import assert_same_update, examples, tiny_config, tokenizer

from asr.data.dataset import SkipReport
from asr.errors import DataDirError
from asr.train import DistInfo, Trainer
from asr.train.consistency import (
    DataSummary,
    agree_on_data,
    drop_utterances,
    ranks_only,
    summarize,
    summary_mismatch,
    union_of_unreadable,
)
from asr.train.data import make_batch, num_frames
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




def _one_step(rank: int, store: str, out: str) -> None:
    info = init_rank(rank, store)
    try:
        trainer = Trainer(tiny_config(*SGD), Path(out) / "exp", tokenizer(), TRAIN, [], progress=False, dist=info)
        batch = make_batch([TRAIN[i] for i in RANK_BATCHES[rank]])
        result = trainer.train_step([batch], utterances=8, progress=0.0)
        assert result.updated
        torch.save({k: v.detach().clone() for k, v in trainer.model.state_dict().items()}, Path(out) / f"rank{rank}.pt")
    except BaseException:
        dist.destroy_process_group()
        raise
    finish_rank()


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
    info = init_rank(rank, store)
    try:
        config = tiny_config(*SGD, "train.epochs=1", "train.lr=0.1", "train.keep_last=1")
        dev = examples(3, seed=9, prefix="d")
        trainer = Trainer(config, Path(out) / "ddp", tokenizer(), FIT_TRAIN, dev, progress=False, dist=info)
        trainer.fit(resume=False)
        torch.save(trainer.history, Path(out) / f"history{rank}.pt")
    except BaseException:
        dist.destroy_process_group()
        raise
    finish_rank()


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


# ---- the ranks agree on their data at start-up

A = DataSummary(849, "a1b2c3d4e5f6", 812345, "0f1e2d3c4b5a")


def test_identical_summaries_pass() -> None:
    assert summary_mismatch([A, A, A]) is None
    assert summary_mismatch([A]) is None
    assert summarize(TRAIN) == summarize(list(reversed(TRAIN)))  # order does not matter


@pytest.mark.parametrize("other", [
    DataSummary(848, A.ids, A.frames, A.labels),
    DataSummary(A.utterances, "ffffffffffff", A.frames, A.labels),
    DataSummary(A.utterances, A.ids, 812344, A.labels),
    DataSummary(A.utterances, A.ids, A.frames, "ffffffffffff"),
])
def test_different_summaries_name_both_ranks_in_one_line(other: DataSummary) -> None:
    message = summary_mismatch([A, A, other], "training", "data/train")
    assert message is not None and "\n" not in message
    assert message.startswith(f"rank 2 has {other.describe('training')}, rank 0 has 849 training "
                              "utterances (ids a1b2c3d4e5f6, 812345 frames, labels 0f1e2d3c4b5a): ")
    assert "every rank must read the same data dir; check that data/train holds the same" in message
    named = summary_mismatch([A, other], "dev", ["data/dev", "/node2/data/dev"])
    assert named is not None and "check that data/dev (rank 1 read /node2/data/dev) holds" in named


def test_summary_sees_ids_frames_and_labels() -> None:
    base = summarize(TRAIN)
    assert (base.utterances, base.frames) == (14, sum(num_frames(e) for e in TRAIN))
    assert summarize(TRAIN[:-1]).utterances == 13
    renamed = [replace(TRAIN[0], utt_id="zz"), *TRAIN[1:]]
    assert summarize(renamed).ids != base.ids and summarize(renamed).frames == base.frames
    relabelled = [replace(TRAIN[0], tokens=TRAIN[0].tokens.flip(0) + 1), *TRAIN[1:]]
    moved = summarize(relabelled)
    assert moved.labels != base.labels and (moved.ids, moved.frames) == (base.ids, base.frames)


def test_union_of_unreadable_drops_the_same_utterances_everywhere() -> None:
    per_rank = [[("u001", "bad header")], [("u001", "bad header"), ("u005", "no such file")], []]
    assert union_of_unreadable(per_rank) == [("u001", "bad header"), ("u005", "rank 1: no such file")]
    assert ranks_only(per_rank) == {"u001": [0, 1], "u005": [1]}
    assert ranks_only([[("u001", "x")], [("u001", "y")]]) == {}  # unreadable everywhere: dropped already
    kept = drop_utterances(TRAIN, ranks_only(per_rank))
    assert [e.utt_id for e in kept] == [e.utt_id for e in TRAIN if e.utt_id not in ("u001", "u005")]


def test_agree_on_data_in_one_process_changes_nothing() -> None:
    report = SkipReport()
    assert agree_on_data(TRAIN, [], report, DistInfo(), "data/train") == (TRAIN, [])


def _agree(rank: int, store: str, out: str) -> None:
    """Rank 1 could not read u002 (rank 0 did), and both read the same dir otherwise: both keep
    13 utterances. Then rank 1 lacks u013 from its data dir: both stop with the same line."""
    info = init_rank(rank, store)
    try:
        report = SkipReport()
        train = TRAIN
        if rank == 1:
            report.unreadable.append(("u002", "truncated file"))
            train = [e for e in TRAIN if e.utt_id != "u002"]
        kept, _ = agree_on_data(train, [], report, info, "data/train")
        lines = [" ".join(e.utt_id for e in kept), " ".join(u for u, _ in report.unreadable)]
        missing = TRAIN[:-1] if rank == 1 else TRAIN
        try:
            agree_on_data(missing, [], SkipReport(), info, "data/train")
            lines.append("no error")
        except DataDirError as exc:
            lines.append(str(exc))
        Path(out, f"agree{rank}.txt").write_text("\n".join(lines))
    except BaseException:
        dist.destroy_process_group()
        raise
    finish_rank()


def test_two_ranks_drop_the_union_and_stop_on_different_data(tmp_path: Path) -> None:
    context = mp.spawn(_agree, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=False)
    assert _join(context, timeout=120)
    rank0, rank1 = ((tmp_path / f"agree{r}.txt").read_text().splitlines() for r in (0, 1))
    expected = " ".join(e.utt_id for e in TRAIN if e.utt_id != "u002")
    assert rank0[0] == rank1[0] == expected
    assert rank0[1] == rank1[1] == "u002"
    assert rank0[2] == rank1[2]
    assert rank0[2].startswith("rank 1 has 13 training utterances (ids ")
    assert ", rank 0 has 14 training utterances (ids " in rank0[2]


def _join(context, timeout: float) -> bool:
    """Wait for spawned processes, killing them after ``timeout`` seconds (a hang fails)."""
    import time

    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the ranks did not finish within {timeout} s (a collective hung)")
    return True


# ---- asr train under torchrun (or launched like it), on CPU

TINY = ("features.sample_rate=8000", "features.n_mels=8", "model.num_layers=1",
        "model.hidden_size=4", "train.epochs=2", "train.device=cpu",
        "train.max_frames_per_batch=200", "train.num_threads=1")


def _wav_data(tmp_path: Path, n: int = 8) -> list:
    """``n`` short tones of 8 kHz (0.4 s + 0.05 s per index) as utterances ``s0``, ``s1``, ..."""
    import numpy as np
    import soundfile as sf

    from asr.data import Utterance

    utts = []
    for i in range(n):
        t = np.arange(int((0.4 + 0.05 * i) * 8000)) / 8000
        path = tmp_path / f"s{i}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32), 8000)
        utts.append(Utterance(f"s{i}", str(path), ["ab", "ba", "abc", "cab"][i % 4], "s"))
    return utts


def _train_args(data: Path, exp: Path, *overrides: str) -> list[str]:
    args = ["-m", "asr.cli.main", "train", "--train", str(data), "--dev", str(data),
            "--exp-dir", str(exp), "--no-progress"]
    for override in (*TINY, *overrides):
        args += ["--set", override]
    return args


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_together(commands: list[list[str]], envs: list[dict], timeout: float = 240) -> list[tuple[int, str]]:
    """Start every command at once; (exit code, stderr) of each; all killed after ``timeout``."""
    procs = [subprocess.Popen(c, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for c, e in zip(commands, envs, strict=True)]
    try:
        errors = [p.communicate(timeout=timeout)[1] for p in procs]
        return [(p.returncode, err) for p, err in zip(procs, errors, strict=True)]
    except subprocess.TimeoutExpired:
        pytest.fail(f"{commands[0][:4]}...: not finished within {timeout} s (a rank hung)")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _two_ranks(data: list[Path], exp: Path, *extra: str) -> list[tuple[int, str]]:
    """``asr train`` as torchrun starts it (RANK, WORLD_SIZE, MASTER_*), rank r on data[r]."""
    port = str(_free_port())
    envs = [dict(os.environ, OMP_NUM_THREADS="1", RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2",
                 MASTER_ADDR="127.0.0.1", MASTER_PORT=port) for r in (0, 1)]
    commands = [[sys.executable, *_train_args(d, exp), *extra] for d in data]
    return _run_together(commands, envs)


def test_a_rank_with_another_data_dir_stops_both_with_one_line(tmp_path: Path) -> None:
    """Rank 1's copy of the data dir lacks s7: both ranks exit 1 with the same one-line error
    (no traceback, no hang) before training."""
    from asr.data import write_data_dir

    utts = _wav_data(tmp_path)
    full = write_data_dir(tmp_path / "data", utts).path
    short = write_data_dir(tmp_path / "node2" / "data", utts[:-1]).path
    results = _two_ranks([full, short], tmp_path / "exp")
    for rank, (rc, err) in enumerate(results):
        lines = [line for line in err.splitlines() if "rank 1 has" in line]
        assert rc == 1 and len(lines) == 1, (rank, err[-2000:])
        assert "Traceback" not in err, err[-2000:]
        assert "rank 1 has 7 training utterances (ids " in lines[0]
        assert ", rank 0 has 8 training utterances (ids " in lines[0]
        assert f"every rank must read the same data dir; check that {full} (rank 1 read {short}) holds" in lines[0]
    assert not (tmp_path / "exp" / "checkpoints").exists()


def test_an_utterance_unreadable_on_one_rank_is_dropped_on_both(tmp_path: Path) -> None:
    """Rank 1's wav.scp points s3 at a broken file: with --max-bad-utts 1 both ranks drop s3,
    train the same 7 utterances, and rank 0 lists s3 in bad_utts."""
    from asr.data import write_data_dir

    utts = _wav_data(tmp_path)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....not audio")
    good = write_data_dir(tmp_path / "data", utts).path
    bad = write_data_dir(tmp_path / "node2" / "data",
                         [replace(u, wav=str(broken)) if u.utt_id == "s3" else u for u in utts]).path
    exp = tmp_path / "exp"
    results = _two_ranks([good, bad], exp, "--max-bad-utts", "1", "--set", "train.epochs=1")
    for rank, (rc, err) in enumerate(results):
        assert rc == 0, (rank, err[-3000:])
    assert (exp / "bad_utts").read_text().startswith("s3 rank 1: ")
    log = (exp / "train.log").read_text()
    assert "1 utterance(s) unreadable on some ranks only, dropped on every rank" in log
    assert "s3 (rank 1)" in log and (exp / "final" / "model.pt").is_file()


def test_lazy_path_an_utterance_one_rank_cannot_read_is_listed_by_both(tmp_path: Path) -> None:
    """Audio read per batch by DataLoader workers: rank 1's copy of s3 is broken after its
    utt2dur was written, so only its worker finds it. With --max-bad-utts 1 both ranks finish
    the epoch (the same number of updates), and the union of what they could not read reaches
    bad_utts with the rank that failed it; with the default limit 0 both ranks stop with the
    same one-line error."""
    from asr.data import write_data_dir
    from asr.data.durations import get_durations

    utts = _wav_data(tmp_path)
    good = write_data_dir(tmp_path / "data", utts).path
    copy = tmp_path / "node2"
    copy.mkdir()
    copies = []
    for u in utts:
        target = copy / Path(u.wav).name
        target.write_bytes(Path(u.wav).read_bytes())
        copies.append(replace(u, wav=str(target)))
    bad = write_data_dir(copy / "data", copies).path
    for data in (good, bad):
        get_durations(data)
    (copy / "s3.wav").write_bytes(b"RIFF....not audio")
    lazy = ("--set", "train.features_on_the_fly=true", "--set", "train.num_workers=1",
            "--set", "features.cmvn=utterance", "--set", "train.epochs=1")
    exp = tmp_path / "exp"
    results = _two_ranks([good, bad], exp, "--max-bad-utts", "1", *lazy)
    for rank, (rc, err) in enumerate(results):
        assert rc == 0, (rank, err[-3000:])
    assert (exp / "bad_utts").read_text().startswith("s3 rank 1: ")
    assert (exp / "final" / "model.pt").is_file()
    results = _two_ranks([good, bad], tmp_path / "exp0", *lazy)
    lines = set()
    for rank, (rc, err) in enumerate(results):
        errors = [line for line in err.splitlines() if line.startswith("asr train: error: ")]
        assert rc != 0 and len(errors) == 1, (rank, err[-3000:])
        lines.add(errors[0])
    assert len(lines) == 1 and "1 utterance(s) with unreadable audio (first 's3'" in lines.pop()


@pytest.mark.slow
def test_torchrun_two_cpu_processes_end_to_end(tmp_path: Path) -> None:
    """``torchrun --nproc_per_node=2 -m asr.cli.main train`` on CPU: one train.log, one set of
    checkpoints and a model directory, written by rank 0."""
    from asr.data import write_data_dir

    data = write_data_dir(tmp_path / "data", _wav_data(tmp_path)).path
    exp = tmp_path / "exp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", *_train_args(data, exp)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (exp / "train.log").read_text()
    assert "x 2 ranks" in log and log.count("epoch 2:") == 1 and "exported model" in log
    assert (exp / "checkpoints" / "epoch-2.pt").is_file() and (exp / "final" / "model.pt").is_file()


def test_torchrun_two_nodes_on_localhost(tmp_path: Path) -> None:
    """Two torchrun launches, one per "node" (``--nnodes 2 --nproc-per-node 1 --node-rank
    {0,1}``), meeting at a c10d rendezvous on localhost: both succeed, the shared exp dir has
    one train.log of 2 ranks and the model."""
    from asr.data import write_data_dir

    data = write_data_dir(tmp_path / "data", _wav_data(tmp_path)).path
    exp = tmp_path / "exp"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    endpoint = f"127.0.0.1:{_free_port()}"
    commands = [[torchrun, "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node),
                 "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "asr-test",
                 "--local-addr", "127.0.0.1", *_train_args(data, exp)] for node in (0, 1)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for node, (rc, err) in enumerate(_run_together(commands, [env, env], timeout=300)):
        assert rc == 0, (node, err[-3000:])
    log = (exp / "train.log").read_text()
    assert "x 2 ranks" in log and log.count("epoch 2:") == 1 and "exported model" in log
    assert (exp / "final" / "model.pt").is_file()
