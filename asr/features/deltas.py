"""Kaldi's ``add-deltas``: append Δ, ΔΔ, ... computed with edge frames replicated.

Kaldi's ``DeltaFeatures`` builds one filter per order: order 0 is ``[1]``; order ``i`` is the
order ``i-1`` filter convolved with ``j / sum(j²)`` for ``j = -window..window``. Each output
block ``i`` is that filter applied to the input frames, where frame indices outside the
utterance are clamped to its first or last frame. Here the clamping uses each utterance's own
length, so padding in a batch never changes its deltas.
"""

from __future__ import annotations

import torch
from torch import nn

from asr.features.logmel import valid_mask
from asr.features.wrapper import ExtractorWrapper


def delta_filters(order: int, window: int) -> list[list[float]]:
    """Kaldi's delta filters: ``order + 1`` lists of ``2 * i * window + 1`` taps each."""
    if order < 0 or window < 1:
        raise ValueError(f"delta order {order} / window {window}: need order >= 0, window >= 1")
    filters = [[1.0]]
    normalizer = float(sum(j * j for j in range(-window, window + 1)))
    for _ in range(order):
        prev = filters[-1]
        cur = [0.0] * (len(prev) + 2 * window)
        for j in range(-window, window + 1):
            for k, value in enumerate(prev):
                cur[j + window + k] += j * value
        filters.append([c / normalizer for c in cur])
    return filters


def add_deltas(
    feats: torch.Tensor, lengths: torch.Tensor, order: int = 2, window: int = 2
) -> torch.Tensor:
    """``(batch, time, dim)`` -> ``(batch, time, dim * (order + 1))``: the features followed by
    their deltas up to ``order``; frames past each length are zero."""
    filters = delta_filters(order, window)
    if order == 0:
        return feats
    batch, time, dim = feats.shape
    reach = order * window
    lengths = lengths.to(feats.device)
    last = (lengths - 1).clamp(min=0)[:, None]
    steps = torch.arange(time, device=feats.device)[None, :]
    shifted: dict[int, torch.Tensor] = {}
    for offset in range(-reach, reach + 1):
        index = torch.minimum((steps + offset).clamp(min=0), last)  # (batch, time)
        shifted[offset] = torch.gather(feats, 1, index.unsqueeze(-1).expand(batch, time, dim))
    blocks = [feats]
    for taps in filters[1:]:
        half = (len(taps) - 1) // 2
        block = torch.zeros_like(feats)
        for k, scale in enumerate(taps):
            if scale != 0.0:
                block = block + scale * shifted[k - half]
        blocks.append(block)
    out = torch.cat(blocks, dim=-1)
    return out * valid_mask(lengths, time).unsqueeze(-1)


class Deltas(ExtractorWrapper):
    """Wrap a feature extractor and append its Kaldi deltas: ``dim`` -> ``dim * (order + 1)``."""

    def __init__(self, inner: nn.Module, order: int = 2, window: int = 2) -> None:
        delta_filters(order, window)  # validate
        super().__init__(inner)
        self.order = order
        self.window = window

    @property
    def dim(self) -> int:
        return self.inner.dim * (self.order + 1)

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, out_lengths = self.inner(waveforms, lengths)
        return add_deltas(feats, out_lengths, self.order, self.window), out_lengths
