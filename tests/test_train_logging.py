"""What a run reports: TensorBoard scalars per update and per epoch, the log lines, early
stopping on dev, the progress bar."""

from __future__ import annotations

import logging
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from train_utils import examples, tiny_config, tokenizer

from asr.train import Trainer

TRAIN = examples(12, seed=7)
DEV = examples(4, seed=8, prefix="d")


def test_tensorboard_scalars(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config("train.log_every_steps=1"), tmp_path, tokenizer(), TRAIN, DEV, progress=False)
    trainer.fit(resume=False)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    per_update = {"train/loss", "train/lr", "train/grad_norm", "train/frames_per_s"}
    per_epoch = {f"epoch/{k}" for k in ("train_loss", "dev_loss", "dev_wer", "dev_cer", "lr", "frames_per_s")}
    assert per_update | per_epoch <= tags
    assert len(events.Scalars("train/loss")) == trainer.global_step  # every update at interval 1
    assert [e.step for e in events.Scalars("epoch/dev_wer")] == [1, 2]
    dev_losses = [e.value for e in events.Scalars("epoch/dev_loss")]
    expected = [h["dev_loss"] for h in trainer.history]
    assert all(abs(a - e) <= 1e-5 * e for a, e in zip(dev_losses, expected, strict=True))  # float32
    assert all(e.value > 0 for e in events.Scalars("train/frames_per_s"))


def test_log_lines_and_early_stopping(tmp_path: Path, caplog) -> None:
    """With a zero learning rate the dev loss never improves after epoch 1: patience 1 stops
    the run after epoch 2 of 5."""
    config = tiny_config("train.optimizer=sgd", "train.lr=0.0", "train.epochs=5", "train.early_stop_patience=1")
    trainer = Trainer(config, tmp_path, tokenizer(), TRAIN, DEV, progress=False)
    with caplog.at_level(logging.INFO, logger="asr.train"):
        trainer.fit(resume=False)
    assert trainer.epoch == 2 and trainer.best_epoch == 1
    text = caplog.text
    assert "early stopping: no dev improvement for 1 epochs" in text
    assert "epoch 1: train loss" in text and "dev WER" in text and "frames/s" in text and "(best)" in text
    assert "model: " in text and "parameters" in text and "12 train / 4 dev utterances" in text
    assert "exported model (epoch 1" in text


def test_progress_bar_shows_rate_and_eta(tmp_path: Path, capsys) -> None:
    trainer = Trainer(tiny_config("train.epochs=1"), tmp_path, tokenizer(), TRAIN, [], progress=True)
    trainer.train_epoch()
    err = capsys.readouterr().err
    assert "epoch 1" in err and "fps=" in err and "batch/s" in err and "<" in err  # elapsed<ETA
