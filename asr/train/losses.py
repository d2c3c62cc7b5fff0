"""The CTC loss of a batch, with utterances that have no valid alignment zeroed and counted."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from asr.data.batching import Batch
from asr.model import AcousticModel


def ctc_losses(log_probs: torch.Tensor, out_lengths: torch.Tensor, batch) -> torch.Tensor:
    """``(batch, time', tokens)`` log-probabilities -> per-utterance CTC losses ``(batch,)``;
    impossible alignments become exact zeros."""
    return F.ctc_loss(
        log_probs.transpose(0, 1),
        batch.targets,
        out_lengths,
        batch.target_lengths,
        blank=0,
        reduction="none",
        zero_infinity=True,
    )


def infinite_count(losses: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Utterances whose loss was infinite (``zero_infinity`` made it an exact zero; a real loss
    with a non-empty target is never 0), as a 0-dim tensor on the losses' device."""
    return ((losses == 0) & (target_lengths > 0)).sum()


def ctc_loss(model: AcousticModel, batch: Batch) -> tuple[torch.Tensor, int]:
    """Summed CTC loss of a batch and the number of utterances whose loss was infinite
    (no valid alignment); those are zeroed rather than allowed to poison the gradients."""
    log_probs, out_lengths = model(batch.feats, batch.feat_lengths)
    losses = ctc_losses(log_probs, out_lengths, batch)
    return losses.sum(), int(infinite_count(losses, batch.target_lengths))
