"""Training-time augmentation: SpecAugment on features, additive noise and speed on waveforms.

- :class:`SpecAugment` (Park et al. 2019): ``freq_masks`` bands of 0..F channels and
  ``time_masks`` spans of 0..min(T, p * length) frames set to ``mask_value``, after an optional
  time warp by up to W frames. Batched, masks only inside each utterance's valid frames; it is
  the ``augment`` callable of :meth:`asr.model.AcousticModel.forward` (normalised features, so
  ``mask_value: zero`` is the mean).
- :func:`add_noise`: noise scaled to a signal-to-noise ratio in dB (signal power over the
  whole utterance); :class:`NoiseSource` draws segments of noise recordings, or white noise.
- Speed perturbation is :func:`asr.audio.speed_perturb` (sox's ``speed``, as Kaldi's
  ``perturb_data_dir_speed.sh``); :class:`WaveformAugment` applies it on the fly with a factor
  of 0.9 / 1.0 / 1.1: one given by the sampler, which draws each utterance's factor of an
  epoch beforehand (:func:`speed_factors`) so that its bucketing sees the perturbed lengths,
  or else one drawn from its generator.

All randomness comes from the generators passed in (or torch's / numpy's global ones, which
the trainer seeds), so runs are reproducible.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from asr.audio import load_audio, speed_perturb
from asr.config import AugmentConfig
from asr.errors import ConfigError

SPEED_FACTORS = (0.9, 1.0, 1.1)
NOISE_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".sph", ".opus")
_SPEED_STREAM = 0x5EED  # keeps the factors' generator apart from the batches' (seed, rank, ...)


def speed_factors(seed: int, epoch: int, count: int) -> list[float]:
    """The speed factor of each of ``count`` utterances in ``epoch`` (one of
    :data:`SPEED_FACTORS`, uniform), from ``(seed, epoch)`` alone: every data-parallel rank
    and every worker draws the same ones."""
    rng = np.random.default_rng((seed, epoch, _SPEED_STREAM))
    return [SPEED_FACTORS[i] for i in rng.integers(len(SPEED_FACTORS), size=count).tolist()]


def perturbed_length(length: int, factor: float) -> int:
    """Frames (or samples) of ``length`` played ``factor`` times faster, as sox's ``speed``
    changes them (rounded; at least 1)."""
    return max(int(round(length / factor)), 1)


def _uniform_int(high: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One integer uniform in ``[0, high]`` per element of ``high`` (int64 tensor)."""
    draw = torch.rand(high.shape, generator=generator, device=high.device)
    return torch.minimum((draw * (high + 1).float()).long(), high)


def _band_masks(
    sizes: torch.Tensor, max_width: torch.Tensor, count: int, axis_len: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``count`` random bands per row, each 0..max_width wide inside ``[0, sizes)``:
    ``(batch, axis_len)`` bool, True where masked."""
    positions = torch.arange(axis_len, device=sizes.device)[None, :]
    masked = torch.zeros(sizes.shape[0], axis_len, dtype=torch.bool, device=sizes.device)
    for _ in range(count):
        width = _uniform_int(torch.minimum(max_width, sizes), generator)
        start = _uniform_int(sizes - width, generator)
        masked |= (positions >= start[:, None]) & (positions < (start + width)[:, None])
    return masked


def time_warp(
    feats: torch.Tensor, lengths: torch.Tensor, max_warp: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Warp the time axis of each ``(batch, time, dim)`` utterance: a random point ``c`` of
    its valid frames moves by ``w`` in ``[-W, W]`` and both sides are linearly stretched to
    fit. Lengths are unchanged; utterances shorter than ``2W + 2`` frames are left alone."""
    if max_warp <= 0:
        return feats
    out = feats.clone()
    for i, length in enumerate(lengths.tolist()):
        if length < 2 * max_warp + 2:
            continue
        low, high = max_warp, length - max_warp  # centre in [W, length - W)
        centre = low + int(torch.randint(high - low, (1,), generator=generator))
        warp = int(torch.randint(-max_warp, max_warp + 1, (1,), generator=generator))
        target = centre + warp
        if target <= 0 or target >= length:
            continue
        utt = feats[i, :length].T.unsqueeze(0)  # (1, dim, time)
        left = nn.functional.interpolate(utt[..., :centre], size=target, mode="linear",
                                         align_corners=False)
        right = nn.functional.interpolate(utt[..., centre:], size=length - target,
                                          mode="linear", align_corners=False)
        out[i, :length] = torch.cat([left, right], dim=-1)[0].T
    return out


class SpecAugment(nn.Module):
    """``(batch, time, dim)`` features and lengths -> augmented features of the same shape."""

    def __init__(self, config: AugmentConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        for name in ("freq_masks", "freq_mask_width", "time_masks", "time_mask_width", "time_warp"):
            if getattr(config, name) < 0:
                raise ConfigError(f"augment.{name}: {getattr(config, name)} must be 0 or more")
        if not 0.0 <= config.time_mask_ratio <= 1.0:
            raise ConfigError(f"augment.time_mask_ratio: {config.time_mask_ratio} must be in [0, 1]")
        self.config = config
        self.generator = generator

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        batch, time, dim = feats.shape
        lengths = lengths.to(feats.device)
        feats = time_warp(feats, lengths, cfg.time_warp, self.generator)
        valid = torch.arange(time, device=feats.device)[None, :] < lengths[:, None]
        freq = _band_masks(
            torch.full((batch,), dim, device=feats.device, dtype=torch.long),
            torch.full((batch,), cfg.freq_mask_width, device=feats.device, dtype=torch.long),
            cfg.freq_masks, dim, self.generator,
        )
        max_time = torch.clamp(
            (lengths.float() * cfg.time_mask_ratio).floor().long(), max=cfg.time_mask_width
        )
        times = _band_masks(lengths, max_time, cfg.time_masks, time, self.generator) & valid
        masked = (times[:, :, None] | freq[:, None, :]) & valid[:, :, None]
        if cfg.mask_value == "mean":
            count = lengths.clamp(min=1).to(feats.dtype)[:, None, None]
            fill = (feats * valid[:, :, None]).sum(1, keepdim=True) / count
        else:
            fill = torch.zeros((), dtype=feats.dtype, device=feats.device)
        return torch.where(masked, fill, feats)


def add_noise(
    signal: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """``signal + g * noise`` with ``g`` chosen so that ``10 log10(P_signal / P_noise) = snr_db``
    (mean powers over the signal's length). The noise is tiled if shorter and cut at a random
    offset if longer. Digital silence (or silent noise) is returned unchanged: the SNR is
    undefined there."""
    signal = np.asarray(signal, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    if signal.size == 0 or noise.size == 0:
        return signal
    rng = rng or np.random.default_rng()
    if noise.size < signal.size:
        noise = np.tile(noise, -(-signal.size // noise.size))
    start = int(rng.integers(0, noise.size - signal.size + 1))
    noise = noise[start : start + signal.size]
    p_signal = float(np.mean(np.square(signal, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_signal == 0.0 or p_noise == 0.0:
        return signal
    gain = math.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (signal + np.float32(gain) * noise).astype(np.float32)


class NoiseSource:
    """Noise to mix in: recordings from a directory (searched recursively for audio files) or
    from a list file (one path per line), or white Gaussian noise when ``source`` is None.
    Recordings are loaded at ``sample_rate`` on first use and kept."""

    def __init__(self, source: str | Path | None, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.paths: list[Path] = []
        self._cache: dict[Path, np.ndarray] = {}
        if source is None:
            return
        source = Path(source)
        if source.is_dir():
            self.paths = sorted(
                p for p in source.rglob("*") if p.suffix.lower() in NOISE_EXTENSIONS
            )
        elif source.is_file():
            lines = source.read_text(encoding="utf-8").splitlines()
            self.paths = [Path(line.strip()) for line in lines if line.strip()]
        else:
            raise ConfigError(f"augment.noise_source: {source}: no such directory or list file")
        if not self.paths:
            raise ConfigError(f"augment.noise_source: {source}: no noise recordings found")

    def sample(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        """``num_samples`` of noise (float32)."""
        if not self.paths:
            return rng.standard_normal(num_samples).astype(np.float32)
        path = self.paths[int(rng.integers(len(self.paths)))]
        if path not in self._cache:
            self._cache[path], _ = load_audio(path, self.sample_rate)
        return self._cache[path]


class WaveformAugment:
    """On-the-fly waveform augmentation for one training example: speed perturbation (the
    factor given, or drawn from 0.9/1.0/1.1) then, with probability ``noise_prob``, noise at
    ``noise_snr_db``."""

    def __init__(self, config: AugmentConfig, sample_rate: int, seed: int = 0) -> None:
        if not 0.0 <= config.noise_prob <= 1.0:
            raise ConfigError(f"augment.noise_prob: {config.noise_prob} must be in [0, 1]")
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.noise = (
            NoiseSource(config.noise_source, sample_rate) if config.noise_snr_db is not None else None
        )

    @property
    def active(self) -> bool:
        return self.config.speed_perturb or self.noise is not None

    def __call__(self, samples: np.ndarray, speed: float | None = None) -> np.ndarray:
        """``(time,)`` float32 -> augmented ``(time',)`` float32 (speed changes the length).
        ``speed``: the utterance's factor chosen beforehand (:func:`speed_factors`); None
        draws one."""
        if self.config.speed_perturb:
            factor = speed if speed is not None else SPEED_FACTORS[int(self.rng.integers(len(SPEED_FACTORS)))]
            samples = speed_perturb(samples, factor)
        if self.noise is not None and self.rng.random() < self.config.noise_prob:
            noise = self.noise.sample(len(samples), self.rng)
            samples = add_noise(samples, noise, float(self.config.noise_snr_db), self.rng)
        return samples
