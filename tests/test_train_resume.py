"""Checkpoints: an interrupted-and-resumed run reproduces the uninterrupted one exactly (loss
curve and weights), mid-epoch included; SIGINT/SIGTERM save and stop; last N + best kept;
atomic writes; ``asr average-checkpoints``."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from train_utils import examples, tiny_config, tokenizer

from asr.cli import main as asr_main
from asr.cli.common import run_command
from asr.modeldir import load_model_dir
from asr.train import Trainer, TrainingInterrupted
from asr.train.checkpoint import CheckpointError, average_weights, load_weights

TRAIN = examples(22, seed=1)
DEV = examples(5, seed=2, prefix="d")
# Dropout and SpecAugment draw from the global RNG: the resume must restore it.
OVERRIDES = (
    "model.dropout=0.3",
    "augment.spec_augment=true",
    "augment.freq_mask_width=2",
    "augment.time_mask_width=3",
    "train.epochs=3",
    "train.checkpoint_every_steps=2",
    "train.lr_schedule=cosine",
    "train.warmup_steps=3",
)


def _trainer(exp: Path, *overrides: str) -> Trainer:
    trainer = Trainer(tiny_config(*OVERRIDES, *overrides), exp, tokenizer(), TRAIN, DEV, progress=False)
    trainer.losses = []
    trainer.step_callbacks.append(lambda t, r: t.losses.append((t.global_step, r.loss)) if r.updated else None)
    return trainer


def _stop_at(step: int, how: str = "request"):
    def callback(trainer: Trainer, result) -> None:
        if trainer.global_step == step:
            if how == "signal":
                signal.raise_signal(signal.SIGTERM)
            else:
                trainer.request_stop()

    return callback


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("stop_step", [3, 7, 10])
def test_interrupted_run_resumes_exactly(tmp_path: Path, stop_step: int) -> None:
    """Stopping after update 3 (mid-epoch, between periodic checkpoints: the stop writes its
    own), 7 (the last batch of epoch 1, before its dev evaluation) or 10 (mid-epoch 2) and
    resuming gives the uninterrupted run's per-update losses, epoch history and weights."""
    straight = _trainer(tmp_path / "straight")
    straight.fit(resume=False)
    batches_per_epoch = len(straight.sampler.batches(0))
    assert batches_per_epoch == 7  # so the stops above are where they say

    first = _trainer(tmp_path / "resumed")
    first.step_callbacks.append(_stop_at(stop_step))
    with pytest.raises(TrainingInterrupted, match="run the same command again to resume"):
        first.fit(resume=False)
    assert first.global_step == stop_step
    assert (tmp_path / "resumed" / "checkpoints" / f"step-{stop_step}.pt").is_file()

    second = _trainer(tmp_path / "resumed")
    second.fit(resume=True)
    assert first.losses + second.losses == straight.losses
    assert [h["train_loss"] for h in second.history] == [h["train_loss"] for h in straight.history]
    assert [h["dev_loss"] for h in second.history] == [h["dev_loss"] for h in straight.history]
    _assert_same_weights(second.model.state_dict(), straight.model.state_dict())
    a = load_weights(tmp_path / "straight" / "final")
    b = load_weights(tmp_path / "resumed" / "final")
    _assert_same_weights(a, b)


def test_sigterm_saves_a_checkpoint_and_stops_cleanly(tmp_path: Path, caplog) -> None:
    exp = tmp_path / "exp"
    trainer = _trainer(exp)
    trainer.step_callbacks.append(_stop_at(3, how="signal"))
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit(resume=False)
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
    message = str(info.value)
    assert "\n" not in message
    assert "stopped by SIGTERM at epoch 1, batch 3" in message and "step-3.pt" in message
    assert (exp / "checkpoints" / "last").read_text().strip() == "step-3.pt"
    assert info.value.exit_code == 130
    # The command-line wrapper turns it into one line and exit code 130.

    def fail(args):
        raise info.value

    import argparse

    assert run_command(fail, argparse.Namespace(), "asr train") == 130
    resumed = _trainer(exp)
    assert resumed.resume() and resumed.global_step == 3 and resumed.step_in_epoch == 3


def test_last_n_and_best_are_kept(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    trainer = _trainer(exp, "train.epochs=4", "train.keep_last=2")
    trainer.fit(resume=False)
    names = sorted(p.name for p in (exp / "checkpoints").iterdir())
    assert names == ["best.pt", "epoch-3.pt", "epoch-4.pt", "last"]  # step-*.pt superseded
    assert (exp / "checkpoints" / "last").read_text().strip() == "epoch-4.pt"
    best = torch.load(exp / "checkpoints" / "best.pt", weights_only=True)
    dev_losses = [h["dev_loss"] for h in trainer.history]
    assert trainer.best_epoch == 1 + dev_losses.index(min(dev_losses))
    assert set(best) == set(trainer.model.state_dict())


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch) -> None:
    """A write that dies half-way leaves the previous checkpoint intact and no partial file."""
    exp = tmp_path / "exp"
    trainer = _trainer(exp, "train.epochs=1")
    trainer.fit(resume=False)
    before = (exp / "checkpoints" / "epoch-1.pt").read_bytes()

    def broken_save(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match="disk full.*previous checkpoints .* are intact"):
        trainer.save_checkpoint()
    assert (exp / "checkpoints" / "epoch-1.pt").read_bytes() == before
    assert not [p for p in (exp / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_average_checkpoints_command(tmp_path: Path, capsys) -> None:
    exp = tmp_path / "exp"
    trainer = _trainer(exp, "train.epochs=3", "train.keep_last=3")
    trainer.fit(resume=False)
    paths = [exp / "checkpoints" / f"epoch-{n}.pt" for n in (1, 2, 3)]
    states = [torch.load(p, weights_only=True)["model"] for p in paths]
    out = tmp_path / "avg"
    assert asr_main.main(["average-checkpoints", "--exp-dir", str(exp), "--last", "3", "--out", str(out)]) == 0
    assert "averaged 3 checkpoints" in capsys.readouterr().out
    loaded = load_model_dir(out)
    for key, value in loaded.model.state_dict().items():
        expected = sum(s[key].double() for s in states) / 3
        # Averaged in float64, stored as float32: one rounding, <= 2^-24 relative (x2 here);
        # an absolute 1e-7 would be under half an ulp for weights above 2.
        torch.testing.assert_close(value.double(), expected, atol=0, rtol=2 * 2.0**-24, msg=key)
    # Explicit files work too, and give the same weights.
    out2 = tmp_path / "avg2"
    assert asr_main.main(["average-checkpoints", "--exp-dir", str(exp), "--out", str(out2), *map(str, paths)]) == 0
    _assert_same_weights(load_weights(out2), load_weights(out))


def test_average_rejects_checkpoints_of_different_models(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save({"w": torch.zeros(2)}, a)
    torch.save({"w": torch.zeros(3)}, b)
    with pytest.raises(CheckpointError, match="shape"):
        average_weights([a, b])
    exp = tmp_path / "exp"
    _trainer(exp, "train.epochs=1").fit(resume=False)
    capsys.readouterr()  # the training's own log lines (when an earlier command set up logging)
    code = asr_main.main(["average-checkpoints", "--exp-dir", str(exp), "--out", str(tmp_path / "o"), str(a), str(b)])
    err = capsys.readouterr().err
    assert code == 1 and "b.pt: w has shape (3,)" in err and len(err.strip().splitlines()) == 1


def test_select_best_by_dev_wer_keeps_the_epoch_with_the_lowest_wer(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config("train.epochs=1", "train.select_best=dev_wer"), tmp_path, tokenizer(), TRAIN,
                      examples(4, seed=6, prefix="d"), progress=False)
    # (dev loss, WER, CER) of four epochs: the loss is lowest at epoch 2, the WER at epochs 3
    # and 4, where the tie goes to the lower loss (epoch 3)
    figures = iter([(5.0, 40.0, 20.0), (3.0, 30.0, 15.0), (4.0, 10.0, 5.0), (4.5, 10.0, 5.0)])
    trainer.evaluate = lambda dev_set: next(figures)
    trainer.train_epoch = lambda tb: (1.0, 100.0, 0)  # the update loop is not under test
    for _ in range(4):
        trainer._run_epoch(None)
    assert (trainer.best_epoch, trainer.best_dev_wer, trainer.best_dev_loss) == (3, 10.0, 4.0)
