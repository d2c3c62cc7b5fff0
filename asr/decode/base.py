"""What every decoder returns and the interface they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from asr.errors import AsrError


class DecoderError(AsrError):
    """A decoder cannot be built or run with the given options or resources."""


@dataclass
class Hypothesis:
    """One decoding result. Scores are natural logs.

    ``score = am_score + lm_score``: ``am_score`` is the CTC log-probability of the token
    sequence (summed over alignments for the prefix search, the best path for greedy search),
    ``lm_score`` the weighted LM log-probability plus the word insertion bonuses.
    """

    tokens: list[int]  # collapsed, blanks removed
    score: float
    am_score: float
    lm_score: float = 0.0
    frames: list[int] | None = None  # output frame at which each token starts, when known
    words: list[str] | None = None  # the word sequence, for decoders that produce words


class Decoder(ABC):
    """``decode((batch, time, vocab) log-probs, (batch,) lengths)`` -> for each utterance a
    list of at most ``nbest`` hypotheses, best first."""

    name: str = "decoder"
    nbest: int = 1

    @abstractmethod
    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        ...

    def __str__(self) -> str:
        return self.name
