"""Float32 rounding bounds for the numerical tests, derived from the arithmetic (not observed on
one machine), so that the tests pass on any x86-64 BLAS/FFT kernel yet still catch real bugs.

The model: float32 has unit roundoff EPS32 = 2^-24 ~ 6e-8; a float32 FFT of size N adds
about EPS32 * log2(N) * ||frame||_2 to each bin (one rounding per butterfly stage; the rms per
bin is EPS32 * sqrt(log2 N) * ||frame||, so this is ~3x over the typical error); a sum of K
non-negative float32 terms is off by at most K * EPS32 of itself. Every bound is then multiplied
by HEADROOM before it is compared, for kernels (MKL, pocketfft, AVX2, AVX-512) that round
differently. The references are computed in float64, whose own error (~1e-16) is negligible.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi

EPS32 = 2.0**-24
HEADROOM = 4.0
KALDI_FLOOR = float(np.finfo(np.float32).eps)  # Kaldi floors energies at float epsilon


def log_tolerance(value: np.ndarray, error: np.ndarray, floor: float) -> np.ndarray:
    """The largest |log max(v', floor) - log max(v, floor)| for |v' - v| <= error, v >= 0,
    plus the float32 rounding of the log itself."""
    value = np.maximum(value, 0.0)
    spread = np.log(np.maximum(value + error, floor) / np.maximum(value - error, floor))
    return spread + 2 * EPS32 * np.abs(np.log(np.maximum(value, floor)))


def filterbank_error(energy: np.ndarray, weights: np.ndarray, bin_error: np.ndarray,
                     magnitude: np.ndarray | None = None) -> np.ndarray:
    """Bound on the float32 error of filterbank energies m_j = sum_k W_jk |X_k|^2 when FFT bin
    k is off by at most dX_k: |d|X|^2| <= 2 |X| dX + dX^2 per bin, plus the rounding of |X|^2
    and of the K_j-term weighted sum, (K_j + 2) * EPS32 * m_j. Without the magnitudes |X|,
    sum_k W |X| dX <= sqrt(sum_k W dX^2 * m) (Cauchy-Schwarz). Shapes: energy (frames, mels),
    weights (mels, bins), bin_error and magnitude (frames, bins)."""
    squared = bin_error**2 @ weights.T
    if magnitude is None:
        cross = np.sqrt(squared * energy)
    else:
        cross = (magnitude * bin_error) @ weights.T
    return 2 * cross + squared + ((weights > 0).sum(1) + 2) * EPS32 * energy


def logmel_reference(signal: np.ndarray, sample_rate: int, n_fft: int, hop_length: int,
                     win_length: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None,
                     htk: bool = False, norm: str | None = "slaney",
                     floor: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """librosa's log-mel spectrogram in float64 (centred, zero-padded, periodic Hann, power 2,
    log(max(., floor))) of ``signal`` and the per-element bound on how far a float32
    computation of it may be; both ``(frames, n_mels)``.

    Where a mel band's power is far below its frame's energy the bound is loose (the FFT's
    rounding is then a visible fraction of the band); everywhere else it is ~1e-6..1e-4."""
    y = np.asarray(signal, dtype=np.float64)
    spec = librosa.stft(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                        window="hann", center=True, pad_mode="constant")
    magnitude = np.abs(spec)  # (bins, frames)
    power = magnitude**2
    # The same float32 filters the front end uses (librosa's default dtype), in float64.
    weights = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min,
                                  fmax=f_max, htk=htk, norm=norm).astype(np.float64)
    mel = (weights @ power).T
    # Parseval on the one-sided spectrum: the windowed frame's energy.
    frame_energy = (2 * power.sum(0) - power[0] - power[-1]) / n_fft
    # FFT stages plus 3 roundings before it (float32 window, window product, samples).
    bin_error = EPS32 * (np.log2(n_fft) + 3) * np.sqrt(frame_energy)
    error = filterbank_error(mel, weights, np.broadcast_to(bin_error[:, None], magnitude.T.shape),
                             magnitude.T)
    return np.log(np.maximum(mel, floor)), log_tolerance(mel, HEADROOM * error, floor)


def _kaldi_call(kind: str, wave: torch.Tensor, opts: dict) -> np.ndarray:
    fn = kaldi.fbank if kind == "fbank" else kaldi.mfcc
    return fn(wave, dither=0.0, energy_floor=0.0, **opts).numpy()  # our defaults


def kaldi_reference(kind: str, signal: np.ndarray, rate: int, **opts) -> tuple[np.ndarray, np.ndarray]:
    """torchaudio.compliance.kaldi fbank or mfcc (Kaldi's compute-{fbank,mfcc}-feats) in
    float64 on the int16-scaled ``signal``, and the per-element bound on a float32
    computation of it; both ``(frames, dim)``. ``opts`` are torchaudio's keyword arguments.

    Float32 error sources per frame, as an error on each FFT bin: the FFT (log2 N stages) on
    the processed frame y; the roundings of DC removal, pre-emphasis (gain <= 1 + c) and
    window, <= (3 + 3c) EPS32 ||x||; and the rounding of the frame mean, a constant offset
    du <= (log2 W + 1) EPS32 ||x|| / sqrt(W) that pre-emphasis scales by (1 - c) and the window
    turns into (1 - c) du |DFT(w)_k| on bin k (this one dominates the lowest bins of loud
    frames: the largest differences from torchaudio's own float32 are there)."""
    wave = torch.from_numpy(np.asarray(signal, dtype=np.float64))[None] * 32768  # int16 scale
    opts = dict(opts, sample_frequency=float(rate))
    n_mels = opts.get("num_mel_bins", 23)
    htk = opts.get("htk_compat", False)
    c = opts.get("preemphasis_coefficient", 0.97)
    dc = opts.get("remove_dc_offset", True)
    ref = _kaldi_call(kind, wave, opts)
    base = {k: v for k, v in opts.items() if k not in ("num_ceps", "cepstral_lifter", "use_energy", "raw_energy")}
    fbank_opts = dict(base, use_energy=False)
    log_mel = _kaldi_call("fbank", wave, fbank_opts)
    log_e_proc = _kaldi_call("fbank", wave, dict(fbank_opts, use_energy=True, raw_energy=False,
                                                  htk_compat=False))[:, 0]
    log_e_raw = _kaldi_call("fbank", wave, dict(fbank_opts, use_energy=True, raw_energy=True,
                                                 remove_dc_offset=False, htk_compat=False))[:, 0]
    e_proc, e_raw = np.exp(log_e_proc), np.exp(log_e_raw)
    length_ms = opts.get("frame_length", 25.0)
    win = int(rate * length_ms * 0.001)
    n_fft = 1 << (win - 1).bit_length() if opts.get("round_to_power_of_two", True) else win
    window = kaldi._feature_window_function(opts.get("window_type", "povey"), win, 0.42,
                                            torch.device("cpu"), torch.float64).numpy()
    # (frames, bins): the FFT and per-sample roundings on every bin, plus the frame mean's
    # rounding as an offset, whose spectrum is (1 - c) du |DFT(window)|.
    base = EPS32 * ((np.log2(n_fft) + 1) * np.sqrt(e_proc) + (3 + 3 * c) * np.sqrt(e_raw))
    bin_error = np.repeat(base[:, None], n_fft // 2 + 1, axis=1)
    if dc:
        offset = (1 - c) * EPS32 * (np.log2(win) + 1) * np.sqrt(e_raw / win)
        bin_error = bin_error + offset[:, None] * np.abs(np.fft.rfft(window, n_fft))[None, :]
    banks, _ = kaldi.get_mel_banks(n_mels, n_fft, float(rate), opts.get("low_freq", 20.0),
                                   opts.get("high_freq", 0.0), 100.0, -500.0, 1.0)
    banks = np.pad(banks.double().numpy(), ((0, 0), (0, 1)))  # the Nyquist bin has weight 0
    mel = np.exp(log_mel)
    error = filterbank_error(mel, banks, bin_error)
    mel_tol = log_tolerance(mel, HEADROOM * error, KALDI_FLOOR)
    # Energy (sum of W squares, raw or processed): W roundings of the sum and the frame's own
    # error (2 ||e|| / ||y||, e the pre-FFT error above); the DC offset cancels to first order.
    raw = opts.get("raw_energy", True)
    e_used = np.exp(_kaldi_call("fbank", wave, dict(fbank_opts, use_energy=True, raw_energy=raw,
                                                     htk_compat=False))[:, 0])
    rel = EPS32 * (win + 6) + 2 * EPS32 * (3 + 3 * c) * np.sqrt(e_raw / np.maximum(e_used, KALDI_FLOOR))
    energy_tol = log_tolerance(e_used, HEADROOM * rel * e_used, KALDI_FLOOR)
    use_energy = opts.get("use_energy", False)  # torchaudio's default
    if kind == "fbank":
        if not use_energy:
            return ref, mel_tol
        parts = [mel_tol, energy_tol[:, None]]
        return ref, np.concatenate(parts if htk else parts[::-1], axis=1)
    # MFCC: c = lifter * (log-mel @ DCT). The bands' errors (each bounded above, with its
    # headroom) have independent signs, so they add in quadrature through the DCT, as do the
    # roundings of its n_mels-term sum (EPS32 * sqrt(n_mels) * |D log m|, with headroom).
    num_ceps = opts.get("num_ceps", 13)
    lifter_q = opts.get("cepstral_lifter", 22.0)
    dct = kaldi._get_dct_matrix(num_ceps, n_mels).double().numpy()
    i = np.arange(num_ceps)
    lifter = 1.0 + 0.5 * lifter_q * np.sin(np.pi * i / lifter_q) if lifter_q != 0.0 else np.ones(num_ceps)
    spread = np.sqrt(mel_tol**2 @ dct**2)
    rounding = HEADROOM * EPS32 * np.sqrt(n_mels) * np.sqrt(log_mel**2 @ dct**2)
    ceps_tol = (spread + rounding) * lifter
    ceps_tol += 2 * EPS32 * np.abs(ref)  # the lifter product and the output's own rounding
    if use_energy:
        ceps_tol[:, 0] = energy_tol
    if htk:
        first = ceps_tol[:, :1] * (1.0 if use_energy else np.sqrt(2))
        ceps_tol = np.concatenate([ceps_tol[:, 1:], first], axis=1)
    return ref, ceps_tol
