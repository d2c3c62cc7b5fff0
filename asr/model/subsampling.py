"""Front-ends between the normalised features and the recurrent layers: frame stacking and a
small 2-D convolution stack. Both reduce the frame rate by ``k`` and map lengths to
``ceil(length / k)``, and both zero the padding first so that an utterance's output never
depends on what it is batched with.
"""

from __future__ import annotations

import torch
from torch import nn


def length_mask(lengths: torch.Tensor, time: int) -> torch.Tensor:
    """``(batch,)`` lengths -> ``(batch, time)`` bool mask, True on valid frames."""
    return torch.arange(time, device=lengths.device)[None, :] < lengths[:, None]


def subsampled_lengths(lengths: torch.Tensor, k: int) -> torch.Tensor:
    """Frames left after a ``k``-fold reduction: ``ceil(length / k)``."""
    return torch.div(lengths + k - 1, k, rounding_mode="floor")


def stack_frames(
    feats: torch.Tensor, lengths: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate each ``k`` consecutive frames and keep every k-th block.

    ``(batch, time, dim)`` -> ``(batch, ceil(time / k), dim * k)``; a last partial block is
    completed with zeros. Lengths become ``ceil(length / k)``.
    """
    if k == 1:
        return feats, lengths
    batch, time, dim = feats.shape
    # Zero the padding frames: after global CMVN they hold -mean/std, which would otherwise be
    # stacked into an utterance's last partial block and make it depend on the batch.
    valid = length_mask(lengths.to(feats.device), time)
    feats = feats * valid.unsqueeze(-1)
    pad = (-time) % k
    if pad:
        feats = torch.nn.functional.pad(feats, (0, 0, 0, pad))
    stacked = feats.reshape(batch, (time + pad) // k, dim * k)
    return stacked, subsampled_lengths(lengths, k)


class FrameStack(nn.Module):
    """:func:`stack_frames` as a module (no parameters): ``dim`` -> ``dim * k`` features."""

    def __init__(self, input_dim: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.output_dim = input_dim * k

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return stack_frames(feats, lengths, self.k)


class Conv2dSubsampling(nn.Module):
    """Two 3x3 convolutions over (time, frequency) with ReLU.

    ``(batch, time, dim)`` -> ``(batch, ceil(time / k), channels * ceil(ceil(dim / 2) / 2))``:
    the first convolution strides ``k`` in time and 2 in frequency, the second 2 in frequency
    only. With padding 1 each output length is exactly ``ceil(length / k)``. Frames past an
    utterance's length are zeroed before each convolution, which is what the convolution's own
    zero padding shows that utterance when it is alone.
    """

    def __init__(self, input_dim: int, k: int, channels: int = 32) -> None:
        super().__init__()
        self.k = k
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, stride=(k, 2), padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=(1, 2), padding=1)
        half = (input_dim + 1) // 2
        freq = (half + 1) // 2  # ceil(ceil(dim / 2) / 2)
        self.output_dim = channels * freq

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, time, dim)`` and ``(batch,)`` -> ``(batch, time', output_dim)``, lengths."""
        lengths = lengths.to(feats.device)
        x = (feats * length_mask(lengths, feats.shape[1]).unsqueeze(-1)).unsqueeze(1)
        out_lengths = subsampled_lengths(lengths, self.k)
        x = torch.relu(self.conv1(x))  # (batch, channels, time', dim / 2)
        x = x * length_mask(out_lengths, x.shape[2])[:, None, :, None]
        x = torch.relu(self.conv2(x))  # (batch, channels, time', dim / 4)
        batch, channels, time, freq = x.shape
        x = x.permute(0, 2, 1, 3).reshape(batch, time, channels * freq)
        return x, out_lengths
