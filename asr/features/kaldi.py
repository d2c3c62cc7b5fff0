"""Kaldi-compatible filterbank and MFCC features, batched in torch (CPU or GPU).

The numbers are those of Kaldi's ``compute-fbank-feats`` / ``compute-mfcc-feats`` (and of
``torchaudio.compliance.kaldi.fbank`` / ``mfcc``, which the tests use as the reference): frames
of ``int(rate * frame_length_ms / 1000)`` samples every ``int(rate * frame_shift_ms / 1000)``,
optional dither, DC removal, raw or windowed log energy, pre-emphasis, a povey / hanning /
hamming / rectangular / blackman window, FFT of the window rounded up to a power of two, power
spectrum, Kaldi's triangular mel filters (``torchaudio.compliance.kaldi.get_mel_banks``), log
floored at float epsilon; MFCC adds the DCT and cepstral liftering.

Kaldi reads 16-bit audio as integers, so the [-1, 1] waveform is multiplied by 32768 first:
the features then equal Kaldi's on the same 16-bit file.

``snip_edges=True`` keeps only frames that fit in the signal (``1 + (n - win) // shift``, 0
when ``n < win``); ``False`` gives ``(n + shift // 2) // shift`` frames centred on multiples of
the shift, with the signal reflected at both ends, per utterance, so padding in a batch never
changes an utterance's frames.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import nn
from torchaudio.compliance.kaldi import get_mel_banks

from asr.config import FeatureConfig
from asr.features.logmel import power_spectrum, prepare_batch, valid_mask

WAVE_SCALE = 32768.0  # [-1, 1] floats -> the int16 range Kaldi computes on
EPSILON = torch.finfo(torch.float32).eps  # Kaldi's floor: std::numeric_limits<float>::epsilon()
BLACKMAN_COEFF = 0.42
WINDOW_TYPES = ("povey", "hanning", "hamming", "rectangular", "blackman")


def kaldi_window(kind: str, size: int) -> torch.Tensor:
    """Kaldi's ``FeatureWindowFunction``: a ``(size,)`` float32 window, computed in float64."""
    n = torch.arange(size, dtype=torch.float64)
    a = 2 * math.pi / (size - 1)
    if kind == "hanning":
        window = 0.5 - 0.5 * torch.cos(a * n)
    elif kind == "povey":
        window = (0.5 - 0.5 * torch.cos(a * n)).pow(0.85)
    elif kind == "hamming":
        window = 0.54 - 0.46 * torch.cos(a * n)
    elif kind == "rectangular":
        window = torch.ones(size, dtype=torch.float64)
    elif kind == "blackman":
        window = (
            BLACKMAN_COEFF - 0.5 * torch.cos(a * n) + (0.5 - BLACKMAN_COEFF) * torch.cos(2 * a * n)
        )
    else:
        raise ValueError(f"unknown window type {kind!r}; use one of {', '.join(WINDOW_TYPES)}")
    return window.float()


def kaldi_num_frames(
    num_samples: torch.Tensor, window_size: int, window_shift: int, snip_edges: bool
) -> torch.Tensor:
    """Kaldi's ``NumFrames`` for each signal length ``(batch,)`` -> ``(batch,)`` int64."""
    num_samples = num_samples.long()
    if snip_edges:
        frames = 1 + torch.div(num_samples - window_size, window_shift, rounding_mode="floor")
        return torch.where(num_samples >= window_size, frames, torch.zeros_like(frames))
    return torch.div(num_samples + window_shift // 2, window_shift, rounding_mode="floor")


class KaldiFbank(nn.Module):
    """``(batch, samples)`` -> ``(batch, frames, [energy +] n_mels)`` Kaldi log filterbanks.

    With ``use_energy`` the log energy is the first column (the last with ``htk_compat``).
    Frames past an utterance's length are zero.
    """

    def __init__(self, config: FeatureConfig, use_energy: bool | None = None) -> None:
        super().__init__()
        self.config = config
        self.use_energy = bool(config.use_energy) if use_energy is None else use_energy
        rate = config.sample_rate
        # Kaldi truncates (static_cast<int32>), unlike LogMel which rounds.
        self.win_length = int(rate * config.frame_length_ms * 0.001)
        self.hop_length = int(rate * config.frame_shift_ms * 0.001)
        if self.win_length < 2 or self.hop_length < 1:
            raise ValueError(f"window {self.win_length} / shift {self.hop_length} samples too small")
        pow2 = 1 << (self.win_length - 1).bit_length()
        if config.n_fft in (None, pow2):
            self.n_fft = pow2
        elif config.n_fft == self.win_length and self.win_length % 2 == 0:
            self.n_fft = self.win_length  # Kaldi's --round-to-power-of-two=false
        else:
            raise ValueError(
                f"n_fft={config.n_fft}: Kaldi features use the window length rounded up to a power "
                f"of two ({pow2}) or, if even, the window length itself ({self.win_length})"
            )
        if not 0.0 <= config.preemphasis <= 1.0:
            raise ValueError(f"preemphasis={config.preemphasis} must be in [0, 1]")
        high_freq = 0.0 if config.f_max is None else config.f_max
        banks, _ = get_mel_banks(
            config.n_mels, self.n_fft, float(rate), config.f_min, high_freq, 100.0, -500.0, 1.0
        )
        # get_mel_banks leaves out the Nyquist bin; Kaldi gives it weight zero.
        banks = torch.nn.functional.pad(banks.float(), (0, 1))
        self.register_buffer("mel_banks", banks.T.contiguous(), persistent=False)  # (freq, mels)
        self.register_buffer("window", kaldi_window(config.window, self.win_length), persistent=False)

    @property
    def dim(self) -> int:
        return self.config.n_mels + int(self.use_energy)

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        return kaldi_num_frames(num_samples, self.win_length, self.hop_length, self.config.snip_edges)

    def frames(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` -> ``(batch, max_frames, win_length)`` raw frames."""
        win, shift = self.win_length, self.hop_length
        n_frames = self.num_frames(lengths)
        max_frames = int(n_frames.max()) if n_frames.numel() else 0
        batch = waveforms.shape[0]
        if max_frames == 0:
            return waveforms.new_zeros(batch, 0, win)
        if self.config.snip_edges:
            return waveforms[:, : (max_frames - 1) * shift + win].unfold(1, win, shift)
        # Reflect each utterance at its own ends (Kaldi's ExtractWindow): s < 0 -> -s - 1,
        # s >= n -> 2n - 1 - s; the clamp only matters for signals shorter than half a window.
        pad = win // 2 - shift // 2
        total = (max_frames - 1) * shift + win
        pos = torch.arange(total, device=waveforms.device)[None, :] - pad
        n = lengths[:, None]
        pos = torch.where(pos < 0, -pos - 1, pos)
        pos = torch.where(pos >= n, 2 * n - 1 - pos, pos)
        pos = torch.minimum(pos.clamp(min=0), (n - 1).clamp(min=0))
        padded = torch.gather(waveforms, 1, pos)
        return padded.unfold(1, win, shift)

    def spectrum(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Power spectra ``(batch, frames, n_fft/2 + 1)``, log energies ``(batch, frames)`` and
        frame counts ``(batch,)``."""
        cfg = self.config
        frames = self.frames(waveforms * WAVE_SCALE, lengths)  # a view: frames overlap
        batch, n_frames, win = frames.shape
        if n_frames == 0:  # every input shorter than a window (or empty)
            empty = frames.new_zeros(batch, 0, self.n_fft // 2 + 1)
            return empty, frames.new_zeros(batch, 0), self.num_frames(lengths)
        if cfg.dither != 0.0:
            frames = frames + torch.randn_like(frames) * cfg.dither
        # Kaldi's steps (DC removal, raw energy, pre-emphasis, window, zero padding to n_fft)
        # written straight into the FFT buffer, with as few passes over the frames as possible.
        if cfg.remove_dc_offset:
            frames = frames - frames.mean(dim=-1, keepdim=True)
        if cfg.raw_energy:
            energy = torch.linalg.vecdot(frames, frames)
        buffer = frames.new_zeros(batch, n_frames, self.n_fft)
        body = buffer[..., :win]
        c = cfg.preemphasis
        if c != 0.0:  # x[j] - c x[j-1], with x[-1] = x[0]
            torch.sub(frames[..., 1:], frames[..., :-1], alpha=c, out=body[..., 1:])
            torch.mul(frames[..., 0], 1.0 - c, out=body[..., 0])
        else:
            body.copy_(frames)
        body.mul_(self.window)
        if not cfg.raw_energy:
            energy = torch.linalg.vecdot(body, body)
        power = power_spectrum(torch.fft.rfft(buffer))
        return power, self._log_energy(energy), self.num_frames(lengths)

    def _log_energy(self, energy: torch.Tensor) -> torch.Tensor:
        """Kaldi's log energy: floored at float epsilon, then at ``log(energy_floor)``."""
        energy = energy.clamp(min=EPSILON).log()
        if self.config.energy_floor > 0.0:
            energy = energy.clamp(min=math.log(self.config.energy_floor))
        return energy

    def log_mel(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log mel energies ``(batch, frames, n_mels)``, log energies, frame counts."""
        power, log_energy, n_frames = self.spectrum(waveforms, lengths)
        mel = torch.matmul(power, self.mel_banks).clamp(min=EPSILON).log()
        return mel, log_energy, n_frames

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return features ``(batch, frames, dim)`` and their lengths ``(batch,)`` int64."""
        waveforms, lengths = prepare_batch(waveforms, lengths)
        mel, log_energy, n_frames = self.log_mel(waveforms, lengths)
        if self.use_energy:
            parts = [mel, log_energy.unsqueeze(-1)]
            mel = torch.cat(parts if self.config.htk_compat else parts[::-1], dim=-1)
        return _zero_padding(mel, n_frames), n_frames


class KaldiMfcc(KaldiFbank):
    """``(batch, samples)`` -> ``(batch, frames, num_ceps)`` Kaldi MFCCs.

    With ``use_energy`` (Kaldi's default for MFCC) C0 is replaced by the log energy; with
    ``htk_compat`` C0/energy moves to the last column (C0 times sqrt(2) when it is not energy).
    """

    def __init__(self, config: FeatureConfig, use_energy: bool | None = None) -> None:
        energy = config.use_energy if config.use_energy is not None else True
        super().__init__(config, use_energy=energy if use_energy is None else use_energy)
        if not 1 <= config.num_ceps <= config.n_mels:
            raise ValueError(f"num_ceps={config.num_ceps} must be in [1, n_mels={config.n_mels}]")
        dct = torchaudio.functional.create_dct(config.n_mels, config.n_mels, "ortho")
        dct[:, 0] = math.sqrt(1 / config.n_mels)  # Kaldi's C0 is the scaled sum of the bins
        self.register_buffer("dct", dct[:, : config.num_ceps].contiguous(), persistent=False)
        q = config.cepstral_lifter
        i = torch.arange(config.num_ceps, dtype=torch.float64)
        lifter = 1.0 + 0.5 * q * torch.sin(math.pi * i / q) if q != 0.0 else torch.ones_like(i)
        self.register_buffer("lifter", lifter.float(), persistent=False)

    @property
    def dim(self) -> int:
        return self.config.num_ceps

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        waveforms, lengths = prepare_batch(waveforms, lengths)
        mel, log_energy, n_frames = self.log_mel(waveforms, lengths)
        ceps = torch.matmul(mel, self.dct) * self.lifter
        if self.use_energy:
            ceps = torch.cat([log_energy.unsqueeze(-1), ceps[..., 1:]], dim=-1)
        if self.config.htk_compat:
            c0 = ceps[..., :1] if self.use_energy else ceps[..., :1] * math.sqrt(2)
            ceps = torch.cat([ceps[..., 1:], c0], dim=-1)
        return _zero_padding(ceps, n_frames), n_frames


def _zero_padding(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero the frames past each length of ``(batch, frames, dim)``."""
    return feats * valid_mask(lengths, feats.shape[1]).unsqueeze(-1)
