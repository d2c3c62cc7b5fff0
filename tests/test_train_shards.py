"""``asr train`` streaming its training set from WebDataset shards (train.shards): every
utterance in exactly one batch per epoch with workers, stale shards refused in one line, and 2
gloo ranks x 2 workers that read disjoint halves, take the same updates and end with the same
weights; with uneven shards the epoch ends for both ranks when the first runs out."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
from faults_utils import TINY, make_data_dir, train_args
from gloo_ranks import finish_rank, init_rank

pytest.importorskip("webdataset")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from asr.cli.main import main as asr_main  # noqa: E402
from asr.config import load_config  # noqa: E402
from asr.data import read_data_dir  # noqa: E402
from asr.data.shards import write_shards  # noqa: E402
from asr.text import Tokenizer  # noqa: E402
from asr.train import Trainer  # noqa: E402
from asr.train.interrupt import TrainingInterrupted  # noqa: E402
from asr.train.lazy import load_lazy  # noqa: E402
from asr.train.pipeline import TrainingData  # noqa: E402

RATE = 8000
STREAM = ["train.features_on_the_fly=true", "train.num_workers=2", "train.epochs=2",
          "augment.speed_perturb=true", "features.cmvn=utterance"]


def _ids(data: Path) -> list[str]:
    return sorted(line.split()[0] for line in (data / "text").read_text().splitlines())


def _record(seen: dict[int, list[str]]):
    """A TrainingData.updates that notes the utterance ids of every batch it yields."""
    original = TrainingData.updates

    def updates(self, epoch, start, limit=None):
        for first, count, batches in original(self, epoch, start, limit):
            seen.setdefault(epoch, []).extend(u for b in batches for u in b.utt_ids)
            yield first, count, batches
    return updates


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("train_shards")
    data = make_data_dir(root / "train", 16)
    write_shards(data, root / "shards", RATE, utts_per_shard=4)  # 4 shards: 2 per rank
    return data, root / "shards"


def test_one_process_with_workers_trains_on_every_utterance_once_per_epoch(sharded, tmp_path, monkeypatch) -> None:
    data, shards = sharded
    seen: dict[int, list[str]] = {}
    monkeypatch.setattr(TrainingData, "updates", _record(seen))
    exp = tmp_path / "exp"
    assert asr_main(train_args(data, exp, None, *STREAM, f"train.shards={shards}")) == 0
    assert sorted(seen) == [0, 1]
    for epoch, ids in seen.items():
        assert sorted(ids) == _ids(data), epoch
    assert seen[0] != seen[1]  # another shard order and other batches each epoch
    assert (exp / "final" / "model.pt").is_file()
    log = (exp / "train.log").read_text()
    assert "training batches stream from 4 shards of 16 utterances" in log


def test_a_shards_yaml_path_works_too(sharded, tmp_path, monkeypatch) -> None:
    data, shards = sharded
    seen: dict[int, list[str]] = {}
    monkeypatch.setattr(TrainingData, "updates", _record(seen))
    args = train_args(data, tmp_path / "exp", None, *STREAM, "train.num_workers=0", "train.epochs=1",
                      "train.accum_grad=2", f"train.shards={shards / 'shards.yaml'}")
    assert asr_main(args) == 0
    assert sorted(seen[0]) == _ids(data)


def _error(capsys) -> str:
    """The one error line of a failed command (the log lines before it aside)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if " INFO " not in line]
    assert len(lines) == 1 and lines[0].startswith("asr train: error: "), lines
    return lines[0]


def test_stale_shards_stop_with_one_line(sharded, tmp_path, capsys) -> None:
    data, shards = sharded
    copy = tmp_path / "train"
    copy.mkdir()
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur"):
        (copy / name).write_text((data / name).read_text())
    # The shards came from `data`; this copy's text differs from the one they recorded.
    text = (copy / "text").read_text().splitlines()
    text[0] = text[0].split()[0] + " c c"
    (copy / "text").write_text("\n".join(text) + "\n")
    assert asr_main(train_args(copy, tmp_path / "exp", None, *STREAM, f"train.shards={shards}")) == 1
    err = _error(capsys)
    assert f"{copy / 'text'}: changed since the shards" in err and "make-shards" in err
    # And without features on the fly: one line too.
    args = train_args(data, tmp_path / "exp2", None, f"train.shards={shards}")
    assert asr_main(args) == 1
    assert "train.features_on_the_fly: true" in _error(capsys)


def _trainer(data: Path, shards: Path, exp: Path) -> Trainer:
    config = load_config(None, [*TINY, *STREAM, f"train.shards={shards}", "train.max_utts_per_batch=2",
                                "train.lr_schedule=cosine"])
    tokenizer = Tokenizer.build(["a b c"], "char")
    train, _ = load_lazy(read_data_dir(data), config.features, tokenizer, config.model.frame_stack)
    trainer = Trainer(config, exp, tokenizer, train, [], progress=False)
    trainer.losses = []
    trainer.step_callbacks.append(lambda t, r: t.losses.append((t.global_step, r.loss)))
    return trainer


def test_a_run_stopped_mid_epoch_resumes_the_stream_exactly(sharded, tmp_path) -> None:
    """The epoch is re-streamed and its first batches skipped: the resumed run takes the
    uninterrupted run's updates (losses) and ends with its weights, bit for bit."""
    data, shards = sharded
    straight = _trainer(data, shards, tmp_path / "straight")
    straight.fit(resume=False)
    first = _trainer(data, shards, tmp_path / "resumed")
    first.step_callbacks.append(lambda t, r: t.request_stop() if t.global_step == 11 else None)
    with pytest.raises(TrainingInterrupted):
        first.fit(resume=False)
    assert (first.epoch, first.step_in_epoch) == (1, 3)
    second = _trainer(data, shards, tmp_path / "resumed")
    second.fit(resume=True)
    assert first.losses + second.losses == straight.losses and len(straight.losses) == 16
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[key], value, atol=0, rtol=0, msg=key)


# ------------------------------------------------------------------------- 2 gloo ranks




def _rank(rank: int, store: str, data: str, shards: str, out: str) -> None:
    # A spawned process spawns its DataLoader workers too (slow); torchrun's ranks fork them.
    mp.set_start_method("fork", force=True)
    info = init_rank(rank, store)
    try:
        config = load_config(None, [*TINY, *STREAM, f"train.shards={shards}", "train.max_utts_per_batch=2"])
        tokenizer = Tokenizer.build(["a b c"], "char")
        train, _ = load_lazy(read_data_dir(data), config.features, tokenizer, config.model.frame_stack, dist=info)
        trainer = Trainer(config, Path(out) / "exp", tokenizer, train, [], progress=False, dist=info)
        seen: dict[int, list[str]] = {}
        record = _record(seen)
        trainer.data.updates = record.__get__(trainer.data)  # type: ignore[method-assign]
        updates: list[int] = []
        messages: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("asr.train").addHandler(handler)
        logging.getLogger("asr.train").setLevel(logging.INFO)
        trainer.step_callbacks.append(lambda t, result: updates.append(t.global_step))
        trainer.fit(resume=False)
        state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        torch.save({"seen": seen, "updates": updates, "global_step": trainer.global_step, "state": state,
                    "log": messages},
                   Path(out) / f"rank{rank}.pt")
    except BaseException:
        dist.destroy_process_group()
        raise
    finish_rank()


def _run_ranks(data: Path, shards: Path, out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    mp.spawn(_rank, args=(str(out / "store"), str(data), str(shards), str(out)), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


def test_two_ranks_with_two_workers_read_disjoint_halves_and_agree(sharded, tmp_path) -> None:
    data, shards = sharded
    ranks = _run_ranks(data, shards, tmp_path)
    for epoch in (0, 1):
        first, second = (r["seen"][epoch] for r in ranks)
        assert not set(first) & set(second), epoch
        assert sorted(first + second) == _ids(data), epoch
        assert len(first) == len(second) == 8
    assert ranks[0]["updates"] == ranks[1]["updates"] and ranks[0]["global_step"] == 8
    for key, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][key], value, atol=0, rtol=0, msg=key)


def test_uneven_ranks_end_the_epoch_together(tmp_path) -> None:
    """5 shards of 4: one rank streams 3 shards, the other 2; both take the updates of the
    shorter and the rest is dropped (logged), with identical weights."""
    data = make_data_dir(tmp_path / "train", 20)
    write_shards(data, tmp_path / "shards", RATE, utts_per_shard=4)
    ranks = _run_ranks(data, tmp_path / "shards", tmp_path / "run")
    assert ranks[0]["updates"] == ranks[1]["updates"]
    for epoch in (0, 1):
        first, second = (r["seen"][epoch] for r in ranks)
        assert not set(first) & set(second)
        counts = Counter(first + second)
        assert max(counts.values()) == 1 and len(counts) < 20
    for key, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][key], value, atol=0, rtol=0, msg=key)
    dropped = [m for m in ranks[0]["log"] if "ran out first" in m]
    assert len(dropped) == 2 and "4 utterance(s)" in dropped[0] and "per rank: 4, 0" in dropped[0], dropped
    assert dropped == [m for m in ranks[1]["log"] if "ran out first" in m]


def test_audio_that_cannot_be_decoded_in_a_shard_is_skipped_and_reported(sharded, tmp_path) -> None:
    """One FLAC member of a shard overwritten with zeros (the tar stays valid): its worker
    reports it with a batch and trains on every other utterance."""
    import shutil
    import tarfile

    data, shards = sharded
    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)
    shard = sorted(copy.glob("shard-*.tar"))[1]
    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".flac"))
    with open(shard, "r+b") as f:
        f.seek(member.offset_data)
        f.write(b"\0" * member.size)
    broken = member.name.rsplit(".", 1)[0]
    config = load_config(None, [*TINY, *STREAM, f"train.shards={copy}"])
    tok = Tokenizer.build([line.split(maxsplit=1)[1] for line in (data / "text").read_text().splitlines()], "char")
    lazy, _ = load_lazy(read_data_dir(data), config.features, tok, subsampling=2)
    trainer = Trainer(config, tmp_path / "exp", tok, lazy, [], progress=False)
    ids = [u for _, _, batches in trainer.data.updates(0, 0) for b in batches for u in b.utt_ids]
    assert sorted(ids) == sorted(set(_ids(data)) - {broken})
    assert [u for u, _ in trainer.data.unreadable] == [broken]
    assert "cannot decode" in trainer.data.unreadable[0][1]


def test_a_mid_epoch_checkpoint_of_shards_refuses_other_workers(sharded, tmp_path) -> None:
    from asr.train.checkpoint import CheckpointError

    data, shards = sharded
    config = load_config(None, [*TINY, *STREAM, f"train.shards={shards}"])
    tok = Tokenizer.build([line.split(maxsplit=1)[1] for line in (data / "text").read_text().splitlines()], "char")
    lazy, _ = load_lazy(read_data_dir(data), config.features, tok, subsampling=2)
    trainer = Trainer(config, tmp_path / "exp", tok, lazy, [], progress=False)
    trainer.train_epoch(limit=1)
    state = trainer.state_dict()
    assert state["step_in_epoch"] > 0 and state["num_workers"] == 2
    other = Trainer(load_config(None, [*TINY, *STREAM, f"train.shards={shards}", "train.num_workers=1"]),
                    tmp_path / "exp2", tok, lazy, [], progress=False)
    with pytest.raises(CheckpointError, match="streamed from shards by 2 worker"):
        other.load_state_dict(state)
    Trainer(config, tmp_path / "exp3", tok, lazy, [], progress=False).load_state_dict(state)  # same: fine
