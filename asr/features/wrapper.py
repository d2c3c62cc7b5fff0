"""A feature extractor that wraps another and keeps its framing (``Deltas``, ``SpeakerCmvn``)."""

from __future__ import annotations

import torch
from torch import nn

from asr.config import FeatureConfig


class ExtractorWrapper(nn.Module):
    """Delegates ``config``, ``hop_length``, ``dim`` and ``num_frames`` to ``inner``; a
    subclass changes ``forward`` (and ``dim`` when it changes the feature size)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    @property
    def config(self) -> FeatureConfig:
        return self.inner.config

    @property
    def hop_length(self) -> int:
        return self.inner.hop_length

    @property
    def dim(self) -> int:
        return self.inner.dim

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        return self.inner.num_frames(num_samples)
