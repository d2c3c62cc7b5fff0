"""Batched greedy (best path) CTC decoding."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asr.decode.base import Decoder, Hypothesis


@dataclass
class GreedyHypothesis:
    tokens: list[int]  # collapsed, blanks removed
    frames: list[int]  # output frame index at which each token starts
    log_prob: float  # log-probability of the best path


@torch.no_grad()
def greedy_decode(
    log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0
) -> list[GreedyHypothesis]:
    """Best path of ``(batch, time, vocab)`` log-probs: argmax per frame, merge repeats, drop
    blanks. The argmax and the collapse run batched on the tensors' device; only the kept
    tokens go to the host."""
    best_scores, best = log_probs.max(dim=-1)  # (batch, time)
    time = log_probs.shape[1]
    valid = torch.arange(time, device=log_probs.device)[None, :] < lengths.to(log_probs.device)[:, None]
    previous = torch.nn.functional.pad(best[:, :-1], (1, 0), value=blank)
    keep = (best != blank) & (best != previous) & valid
    path_scores = (best_scores * valid).sum(dim=1).cpu().tolist()
    batch_idx, frame_idx = keep.nonzero(as_tuple=True)
    tokens = best[batch_idx, frame_idx].cpu().tolist()
    batch_idx = batch_idx.cpu().tolist()
    frame_idx = frame_idx.cpu().tolist()
    hyps = [GreedyHypothesis([], [], score) for score in path_scores]
    for b, f, t in zip(batch_idx, frame_idx, tokens, strict=True):
        hyps[b].tokens.append(t)
        hyps[b].frames.append(f)
    return hyps


class GreedyDecoder(Decoder):
    """:func:`greedy_decode` behind the :class:`~asr.decode.base.Decoder` interface (one
    hypothesis per utterance: the best path, scored by its log-probability)."""

    name = "greedy"

    def __init__(self, blank: int = 0) -> None:
        self.blank = blank
        self.nbest = 1

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        return [
            [Hypothesis(h.tokens, h.log_prob, h.log_prob, 0.0, h.frames)]
            for h in greedy_decode(log_probs, lengths, self.blank)
        ]
