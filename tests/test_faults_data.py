"""Faults in the data and the disk: corrupt, missing or unreadable audio in training and
decoding is skipped, counted and listed, up to ``--max-bad-utts``; a disk that fills up or an
output directory that cannot be written gives one clear line, and what was written before is
intact."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from faults_utils import make_data_dir, train_args

from asr.cli import main as asr_main
from asr.config import load_config
from asr.data import read_data_dir
from asr.data.dataset import load_examples
from asr.errors import DataDirError
from asr.features import build_frontend
from asr.text import Tokenizer
from asr.train import Trainer
from asr.train.checkpoint import CheckpointError, Checkpoints, load_file
from asr.train.data import load_waveforms


def _break(data: Path) -> list[str]:
    """Make 3 utterances unreadable: a missing file, random bytes, a truncated header."""
    wavs = sorted((data / "wav").glob("*.wav"))
    wavs[1].unlink()
    wavs[3].write_bytes(os.urandom(3000))
    wavs[5].write_bytes(wavs[5].read_bytes()[:30])
    return [w.stem for w in (wavs[1], wavs[3], wavs[5])]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("faults")
    return {
        "train": make_data_dir(root / "train", 12),
        "dev": make_data_dir(root / "dev", 4, prefix="spk2"),
        "bad": make_data_dir(root / "bad", 8, prefix="spk3"),
    }


@pytest.fixture(scope="module")
def bad_ids(corpus) -> list[str]:
    return _break(corpus["bad"])


@pytest.fixture(scope="module")
def model_dir(corpus, tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("exp") / "exp"
    assert asr_main.main(train_args(corpus["train"], exp, corpus["dev"], "train.epochs=1")) == 0
    return exp / "final"


def test_training_skips_lists_and_counts_bad_audio(corpus, bad_ids, tmp_path, capsys):
    exp = tmp_path / "exp"
    code = asr_main.main([*train_args(corpus["bad"], exp, None, "train.epochs=1"), "--max-bad-utts", "3"])
    assert code == 0
    listed = (exp / "bad_utts").read_text().splitlines()
    assert [line.split()[0] for line in listed] == bad_ids
    assert "no such file" in listed[0] and "cannot decode audio" in listed[1]  # errors kept
    log = (exp / "train.log").read_text()
    for utt in bad_ids:
        assert f"utterance {utt}:" in log
    assert "skipped 3 utterance(s): unreadable audio" in log
    assert "3 utterance(s) with unreadable audio skipped (at most 3 allowed)" in log
    assert "5 utterances" in log  # the 5 readable ones were trained on
    assert (exp / "final" / "model.pt").is_file()


@pytest.mark.parametrize("limit", [None, "2"])
def test_training_stops_beyond_max_bad_utts(corpus, bad_ids, tmp_path, capsys, limit):
    exp = tmp_path / "exp"
    extra = ["--max-bad-utts", limit] if limit else []  # default 0: the first one stops the run
    code = asr_main.main([*train_args(corpus["bad"], exp, None), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    allowed = limit or "0"
    assert err[-1] == (
        f"asr train: error: {corpus['bad']}: {int(allowed) + 1} utterance(s) with unreadable audio "
        f"(first '{bad_ids[0]}'), more than --max-bad-utts {allowed}; fix or drop them "
        "(asr data fix) or raise --max-bad-utts"
    )
    assert not (exp / "checkpoints").exists()


def test_max_bad_utts_is_a_typed_config_field():
    config = load_config(overrides=["train.max_bad_utts=5"])
    assert config.train.max_bad_utts == 5
    assert load_config().train.max_bad_utts == 0
    with pytest.raises(Exception, match="max_bad_utts"):
        load_config(overrides=["train.max_bad_utts=many"])


@pytest.mark.parametrize("on_the_fly", [False, True])
def test_loaders_apply_the_limit(corpus, bad_ids, on_the_fly):
    data = read_data_dir(corpus["bad"])
    config = load_config(overrides=["features.sample_rate=8000", "features.n_mels=12"])
    tokenizer = Tokenizer.build((u.text for u in data.utterances), "char")

    def load(limit):
        if on_the_fly:
            return load_waveforms(data, config.features, tokenizer, max_bad_utts=limit)
        return load_examples(data, build_frontend(config.features), tokenizer, max_bad_utts=limit)

    examples, report = load(-1)  # no limit
    assert len(examples) == 5 and report.counts["unreadable audio"] == 3
    assert [u for u, _ in report.unreadable] == bad_ids
    examples, report = load(None)
    assert len(report.unreadable) == 3
    with pytest.raises(DataDirError, match=f"3 utterance.*first '{bad_ids[0]}'.*--max-bad-utts 2"):
        load(2)


def test_decoding_skips_lists_and_stops(model_dir, corpus, bad_ids, tmp_path, capsys):
    out = tmp_path / "decode"
    base = ["decode", "--model", str(model_dir), "--data", str(corpus["bad"]), "--out", str(out),
            "--device", "cpu"]
    assert asr_main.main(base) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"asr decode: error: {corpus['bad']}: 3 unreadable utterance(s) "
                          f"(first '{bad_ids[0]}'), more than --max-bad-utts 0")
    assert not (out / "text").exists()

    assert asr_main.main([*base, "--max-bad-utts", "3"]) == 0
    assert (out / "bad_utts").read_text().split() == bad_ids
    hyps = (out / "text").read_text().splitlines()
    assert len(hyps) == 5 and not any(line.split()[0] in bad_ids for line in hyps)
    log = (out / "decode.log").read_text()
    assert f"skipped 3 unreadable utterance(s) (at most 3 allowed): {' '.join(bad_ids)}" in log
    summary = (out / "score.json").read_text()
    assert all(utt in summary for utt in bad_ids)
    # Decoding clean data into the same directory leaves no stale list behind.
    clean = ["decode", "--model", str(model_dir), "--data", str(corpus["dev"]), "--out", str(out),
             "--device", "cpu"]
    assert asr_main.main(clean) == 0 and not (out / "bad_utts").exists()


# -- disk full / unwritable -----------------------------------------------------------------


def _disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_checkpointing_keeps_previous_checkpoint(tmp_path, monkeypatch):
    from train_utils import examples, tiny_config, tokenizer

    exp = tmp_path / "exp"
    Trainer(tiny_config("train.epochs=1"), exp, tokenizer(), examples(8), examples(4, seed=1),
            progress=False).fit()
    ckpts = exp / "checkpoints"
    before = {p.name: p.read_bytes() for p in ckpts.iterdir()}
    assert (ckpts / "last").read_text().strip() == "epoch-1.pt"

    trainer = Trainer(tiny_config("train.epochs=2"), exp, tokenizer(), examples(8), examples(4, seed=1),
                      progress=False)
    # The disk fills up during the second epoch: every atomic write from then on fails.
    trainer.step_callbacks.append(lambda *_: monkeypatch.setattr("asr.utils.os.fsync", _disk_full))
    with pytest.raises(CheckpointError) as info:
        trainer.fit()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(ckpts / "best.pt")) or message.startswith(str(ckpts / "epoch-2.pt"))
    assert "No space left on device" in message and "are intact" in message
    assert {p.name: p.read_bytes() for p in ckpts.iterdir()} == before  # nothing touched, no temp
    assert load_file(ckpts / "epoch-1.pt")["epoch"] == 1

    monkeypatch.undo()  # space freed: the same command resumes and finishes
    trainer = Trainer(tiny_config("train.epochs=2"), exp, tokenizer(), examples(8), examples(4, seed=1),
                      progress=False)
    trainer.fit()
    assert trainer.epoch == 2 and Checkpoints(ckpts).latest() == ckpts / "epoch-2.pt"


def test_disk_full_in_asr_train_is_one_line(corpus, tmp_path, monkeypatch, capsys):
    exp = tmp_path / "exp"
    monkeypatch.setattr("asr.utils.os.fsync", _disk_full)
    assert asr_main.main(train_args(corpus["train"], exp, None, "train.epochs=1")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("asr train: error: ") and "No space left on device" in err[-1]
    assert not list(exp.rglob("*.tmp")) and not list(exp.rglob(".*.tmp"))


def test_unwritable_exp_dir_is_one_line(corpus, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    assert asr_main.main(train_args(corpus["train"], blocker / "exp", None)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"asr train: error: {blocker / 'exp'}")
    assert "Not a directory" in err[0]


def test_unwritable_decode_out_is_one_line(model_dir, corpus, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x\n")
    code = asr_main.main(["decode", "--model", str(model_dir), "--data", str(corpus["dev"]),
                          "--out", str(blocker / "out"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("asr decode: error: ") and "Not a directory" in err[-1]


def test_disk_full_in_decode_keeps_previous_outputs(model_dir, corpus, tmp_path, monkeypatch, capsys):
    out = tmp_path / "decode"
    args = ["decode", "--model", str(model_dir), "--data", str(corpus["dev"]), "--out", str(out),
            "--device", "cpu"]
    assert asr_main.main(args) == 0
    before = (out / "text").read_bytes()
    monkeypatch.setattr("asr.utils.os.fsync", _disk_full)
    assert asr_main.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "No space left on device" in err[-1]
    assert (out / "text").read_bytes() == before
    assert not list(out.glob(".*.tmp"))
    torch.manual_seed(0)  # keep the global RNG state of later tests independent of this one
