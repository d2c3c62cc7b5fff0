"""Live progress: the epoch line's ETA, EXP/progress.json, ``asr follow`` and the averaged
export of ``train.average_last``."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import torch
from train_utils import examples, tiny_config, tokenizer

from asr.progress import follow, read_progress
from asr.train import Trainer
from asr.train.checkpoint import average_weights, epoch_checkpoints
from asr.train.stats import format_duration, format_eta
from asr.utils import setup_logging


def test_eta_is_the_mean_of_the_last_epochs_times_the_epochs_left():
    history = [{"epoch": 1, "seconds": 100.0}, {"epoch": 2, "seconds": 30.0}, {"epoch": 3, "seconds": 30.0},
               {"epoch": 4, "seconds": 30.0}]
    assert format_eta(history, 12) == "4m00s"  # 8 epochs x 30 s; the slow first epoch is forgotten
    assert format_eta(history, 4) == "0m00s"
    assert format_eta([], 4) == "unknown"
    assert format_duration(3725) == "1h02m"


def test_follow_prints_every_new_log_line_and_the_run_exports_the_average(tmp_path: Path):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "train.log").write_text("an earlier run's line\n")
    setup_logging(False, exp / "train.log")
    out = io.StringIO()
    follower = threading.Thread(target=lambda: follow(exp, out=out, bar=False, poll=0.05, timeout=120))
    follower.start()
    config = tiny_config("train.epochs=4", "train.average_last=2", "train.early_stop_patience=0")
    trainer = Trainer(config, exp, tokenizer(), examples(12), examples(4, seed=1, prefix="d"), progress=False)
    final = trainer.fit()
    follower.join(timeout=60)
    assert not follower.is_alive()  # it saw progress.json say done
    shown = out.getvalue()
    assert "earlier run" not in shown
    for epoch in range(1, 5):
        assert f"epoch {epoch}: train loss" in shown
    assert "ETA" in shown and "exported model (average of epochs 3-4" in shown
    progress = read_progress(exp)
    assert progress is not None and progress.done and progress.epoch == 4
    # The exported weights are the mean of the last two epoch checkpoints, kept for it.
    paths = epoch_checkpoints(exp / "checkpoints")[-2:]
    assert [p.name for p in paths] == ["epoch-3.pt", "epoch-4.pt"]
    exported = torch.load(final / "model.pt", map_location="cpu", weights_only=True)
    exported = exported.get("model", exported) if isinstance(exported.get("model"), dict) else exported
    for key, value in average_weights(paths).items():
        assert torch.equal(exported[key], value), key
