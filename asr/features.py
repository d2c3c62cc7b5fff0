"""Feature extraction: batched log-mel filterbanks in torch, and mean/variance normalisation.

Mel filters come from librosa so the numbers equal ``librosa.feature.melspectrogram`` (centred
frames, Hann window, power spectrum, zero padding at the edges) followed by a floored log.
"""

from __future__ import annotations

import math

import librosa
import numpy as np
import torch
from torch import nn

from asr.config import FeatureConfig


def frame_lengths(num_samples: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Frames produced for each signal length by a centred STFT: ``1 + len // hop``."""
    return 1 + torch.div(num_samples, hop_length, rounding_mode="floor")


class LogMel(nn.Module):
    """``(batch, samples)`` waveforms -> ``(batch, frames, n_mels)`` log-mel features.

    Padding beyond each utterance's length never changes its frames: every frame is computed
    from its own centred window, and frames past the end are dropped by the returned lengths.
    (The last frame of a padded utterance may see padding zeros where a lone utterance sees
    its own zero padding, which is the same value.)
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.win_length = round(config.sample_rate * config.frame_length_ms / 1000)
        self.hop_length = round(config.sample_rate * config.frame_shift_ms / 1000)
        self.n_fft = config.n_fft or 2 ** math.ceil(math.log2(self.win_length))
        if self.n_fft < self.win_length:
            raise ValueError(f"n_fft={self.n_fft} is shorter than the window ({self.win_length})")
        mel = librosa.filters.mel(
            sr=config.sample_rate,
            n_fft=self.n_fft,
            n_mels=config.n_mels,
            fmin=config.f_min,
            fmax=config.f_max,
            htk=config.mel_scale == "htk",
            norm=config.mel_norm,
        )
        self.register_buffer("mel_basis", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer(
            "window", torch.hann_window(self.win_length, periodic=True), persistent=False
        )

    @property
    def dim(self) -> int:
        return self.config.n_mels

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return features ``(batch, frames, n_mels)`` and their lengths ``(batch,)`` int64."""
        if waveforms.dim() == 1:
            waveforms = waveforms.unsqueeze(0)
        if lengths is None:
            lengths = torch.full(
                (waveforms.shape[0],), waveforms.shape[1], dtype=torch.long, device=waveforms.device
            )
        # Zero the padding so that each utterance's last frames see zeros, as they would alone.
        mask = torch.arange(waveforms.shape[1], device=waveforms.device)[None, :] < lengths[:, None]
        waveforms = waveforms * mask
        spec = torch.stft(
            waveforms.float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # (batch, freq, frames)
        mel = torch.matmul(self.mel_basis, power)  # (batch, n_mels, frames)
        feats = torch.log(torch.clamp(mel, min=self.config.log_floor)).transpose(1, 2)
        out_lengths = frame_lengths(lengths.to(feats.device), self.hop_length)
        return feats.contiguous(), out_lengths


def utterance_cmvn(feats: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each utterance of ``(batch, time, dim)`` to zero mean and unit variance over
    its own valid frames; padding frames are set to zero."""
    mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    count = lengths.clamp(min=1).to(feats.dtype)[:, None, None]
    mean = (feats * mask).sum(1, keepdim=True) / count
    var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / count
    return ((feats - mean) / torch.sqrt(var + eps)) * mask


class CmvnStats:
    """Accumulates per-dimension count, sum and sum of squares over many utterances
    (the statistics Kaldi's ``compute-cmvn-stats`` keeps), in float64."""

    def __init__(self, dim: int) -> None:
        self.count = 0
        self.sum = np.zeros(dim, dtype=np.float64)
        self.sum_sq = np.zeros(dim, dtype=np.float64)

    def add(self, feats: torch.Tensor | np.ndarray) -> None:
        """Add the frames of one ``(time, dim)`` utterance."""
        array = np.asarray(feats, dtype=np.float64)
        self.count += array.shape[0]
        self.sum += array.sum(axis=0)
        self.sum_sq += np.square(array).sum(axis=0)

    def mean_std(self, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
        if self.count == 0:
            raise ValueError("no frames accumulated for CMVN statistics")
        mean = self.sum / self.count
        var = np.maximum(self.sum_sq / self.count - mean**2, 0.0)
        return torch.from_numpy(mean).float(), torch.from_numpy(np.sqrt(var + eps)).float()


class FeatureNormalizer(nn.Module):
    """Mean/variance normalisation of ``(batch, time, dim)`` features.

    ``global``: statistics of the training set, kept as buffers so they travel with the model's
    weights; ``utterance``: each utterance on its own; ``none``: identity.
    """

    def __init__(self, mode: str, dim: int) -> None:
        super().__init__()
        if mode not in ("global", "utterance", "none"):
            raise ValueError(f"unknown CMVN mode {mode!r}")
        self.mode = mode
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.mode == "global":
            return (feats - self.mean) / self.std
        if self.mode == "utterance":
            return utterance_cmvn(feats, lengths)
        return feats
