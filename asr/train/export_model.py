"""The end of a run: ``EXP/final``, the model directory of the best epoch's weights, or of the
mean of the last ``train.average_last`` epochs' weights (scored on dev and logged)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from asr.modeldir import save_model_dir
from asr.train.checkpoint import EPOCH_RE, average_weights, epoch_checkpoints

if TYPE_CHECKING:
    from asr.train.loop import Trainer

log = logging.getLogger("asr.train")


def export_final(trainer: Trainer) -> Path:
    """Write and return ``EXP/final`` (rank 0 only)."""
    if trainer.tc.average_last > 0 and epoch_checkpoints(trainer.ckpt_dir):
        return _export_average(trainer)
    best = trainer.ckpt_dir / "best.pt"
    if best.exists():
        trainer.model.load_state_dict(torch.load(best, map_location=trainer.device, weights_only=True))
    out = save_model_dir(trainer.exp_dir / "final", trainer.model, trainer.config, trainer.tokenizer)
    if not trainer.dev_set:
        which = f"train loss {trainer.best_dev_loss:.4f} (no dev set)"
    else:
        which = (f"dev loss {trainer.best_dev_loss:.4f}, "
                 f"dev {trainer.tokenizer.error_rate_name} {trainer.best_dev_wer:.2f}%")
    log.info("exported model (epoch %d, %s) to %s", trainer.best_epoch, which, out)
    return out


def _export_average(trainer: Trainer) -> Path:
    paths = epoch_checkpoints(trainer.ckpt_dir)[-trainer.tc.average_last :]
    trainer.model.load_state_dict({k: v.to(trainer.device) for k, v in average_weights(paths).items()})
    epochs = [int(EPOCH_RE.match(p.name).group(1)) for p in paths]  # type: ignore[union-attr]
    span = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}-{epochs[-1]}"
    if trainer.dev_set:  # on this rank alone: the other ranks have left fit()
        dev_loss, dev_wer, _ = trainer.evaluate(trainer.dev_set, across_ranks=False)
        er = trainer.tokenizer.error_rate_name
        which = (f"dev loss {dev_loss:.4f}, dev {er} {dev_wer:.2f}%; best single epoch "
                 f"{trainer.best_epoch}: dev {er} {trainer.best_dev_wer:.2f}%")
    else:
        which = "no dev set"
    out = save_model_dir(trainer.exp_dir / "final", trainer.model, trainer.config, trainer.tokenizer)
    log.info("exported model (average of %s, %s) to %s", span, which, out)
    return out
