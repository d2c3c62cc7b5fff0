"""Kaldi fbank/MFCC and deltas: equal to torchaudio.compliance.kaldi (the reference for Kaldi's
compute-fbank-feats / compute-mfcc-feats) on real recordings, batched == unbatched, GPU == CPU.

Tolerance: torchaudio computes the reference in float64, and each of our float32 values must
be within the bound fp_bounds.kaldi_reference derives for it from float32 rounding (FFT, DC
removal, pre-emphasis, window, filterbank sum, log; for MFCC the DCT and lifter, up to
1 + Q/2 = 12). The bound is loose only where a mel band is ~100 dB below its frame's energy
(the lowest bins of loud frames): there float32 rounding is a visible fraction of the band.
So that the check keeps its teeth, the median bound must stay below TIGHT (a wrong window,
mel bank, pre-emphasis or lifter moves nearly every value by 1e-2 or more).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi
from fp_bounds import EPS32, HEADROOM, kaldi_reference, logmel_reference
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.config import FeatureConfig
from asr.features import (
    KaldiFbank,
    KaldiMfcc,
    add_deltas,
    build_frontend,
    delta_filters,
    kaldi_num_frames,
)

AN4_FILES = ["an4test_clstk/fcaw/an406-fcaw-b.wav", "an4test_clstk/fjlp/cen1-fjlp-b.wav",
             "an4_clstk/fash/an251-fash-b.wav"]
FSDD_FILES = ["0_george_0.wav", "7_nicolas_33.wav"]
# The median per-element bound: log filterbanks are mostly good to ~1e-4; MFCCs mix every
# band (through the DCT, times the lifter), so one quiet band loosens a whole frame.
TIGHT = {"fbank": 3e-4, "mfcc": 3e-3}


def _an4(shared_data: Path) -> list[np.ndarray]:
    out = []
    for name in AN4_FILES:
        path = shared_data / "an4" / "wav" / name
        if not path.is_file():
            pytest.skip(f"{path} not present")
        samples, rate = sf.read(path, dtype="float32")
        assert rate == 16000
        out.append(samples)
    return out


def _fsdd(fsdd_recordings: Path) -> list[np.ndarray]:
    return [sf.read(fsdd_recordings / name, dtype="float32")[0] for name in FSDD_FILES]


def _assert_close(ours: torch.Tensor, ref: np.ndarray, tol: np.ndarray, kind: str | None) -> None:
    """Every value within its derived float32 bound of the float64 reference (and, for a
    ``kind``, the bound tight enough to catch a wrong formula)."""
    assert tuple(ours.shape) == ref.shape
    excess = np.abs(ours.double().numpy() - ref) / tol
    assert excess.max() <= 1.0, (excess.max(), np.unravel_index(excess.argmax(), excess.shape))
    assert kind is None or np.median(tol) <= TIGHT[kind], np.median(tol)


def _reference(kind: str, signal: np.ndarray, rate: int, **opts) -> tuple[np.ndarray, np.ndarray]:
    # Kaldi computes on 16-bit integer values; energy_floor 0 and dither 0 as our defaults.
    return kaldi_reference(kind, signal, rate, **opts)


OPTION_SETS = [
    # window, snip_edges, use_energy, preemphasis, raw_energy, htk_compat, remove_dc_offset
    ("povey", True, False, 0.97, True, False, True),
    ("povey", False, True, 0.97, True, False, True),
    ("hamming", True, True, 0.0, False, True, True),
    ("hanning", False, False, 0.5, True, True, False),
    ("rectangular", True, True, 0.97, False, False, True),
    ("blackman", False, True, 0.97, True, False, False),
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: "-".join(map(str, o)))
def test_fbank_and_mfcc_equal_torchaudio_on_an4(shared_data: Path, options: tuple) -> None:
    window, snip, energy, pre, raw, htk, dc = options
    for signal in _an4(shared_data):
        common = dict(window=window, snip_edges=snip, use_energy=energy, preemphasis=pre,
                      raw_energy=raw, htk_compat=htk, remove_dc_offset=dc, f_min=20.0)
        ref_opts = dict(window_type=window, snip_edges=snip, use_energy=energy,
                        preemphasis_coefficient=pre, raw_energy=raw, htk_compat=htk,
                        remove_dc_offset=dc, low_freq=20.0)
        fbank = KaldiFbank(FeatureConfig(type="fbank", sample_rate=16000, n_mels=40, **common))
        ours, n = fbank(torch.from_numpy(signal))
        ref, tol = _reference("fbank", signal, 16000, num_mel_bins=40, **ref_opts)
        assert n.item() == ref.shape[0] > 0
        _assert_close(ours[0], ref, tol, "fbank")
        mfcc = KaldiMfcc(FeatureConfig(type="mfcc", sample_rate=16000, n_mels=23, **common))
        ours, _ = mfcc(torch.from_numpy(signal))
        ref, tol = _reference("mfcc", signal, 16000, num_mel_bins=23, **ref_opts)
        _assert_close(ours[0], ref, tol, "mfcc")


@pytest.mark.parametrize(("frame_ms", "shift_ms", "n_fft"), [(25.0, 10.0, None), (20.0, 10.0, 160),
                                                             (32.0, 8.0, None)])
def test_fbank_equals_torchaudio_on_fsdd_8k(
    fsdd_recordings: Path, frame_ms: float, shift_ms: float, n_fft: int | None
) -> None:
    """8 kHz, other frame sizes, n_fft == window (Kaldi's --round-to-power-of-two=false),
    a band limit, MFCC without liftering and with energy."""
    for signal in _fsdd(fsdd_recordings):
        config = FeatureConfig(type="fbank", sample_rate=8000, n_mels=23, frame_length_ms=frame_ms,
                               frame_shift_ms=shift_ms, n_fft=n_fft, f_min=64.0, f_max=3800.0)
        ref_opts = dict(frame_length=frame_ms, frame_shift=shift_ms, low_freq=64.0,
                        high_freq=3800.0, round_to_power_of_two=n_fft is None)
        ours, _ = KaldiFbank(config)(torch.from_numpy(signal))
        _assert_close(ours[0], *_reference("fbank", signal, 8000, num_mel_bins=23, **ref_opts), "fbank")
        config.type, config.num_ceps, config.cepstral_lifter = "mfcc", 20, 0.0
        ours, _ = KaldiMfcc(config)(torch.from_numpy(signal))
        ref, tol = _reference("mfcc", signal, 8000, num_mel_bins=23, num_ceps=20, cepstral_lifter=0.0,
                              use_energy=True, **ref_opts)
        _assert_close(ours[0], ref, tol, "mfcc")


def test_graves123_is_fbank_energy_plus_kaldi_deltas(shared_data: Path) -> None:
    signal = _an4(shared_data)[0]
    config = FeatureConfig(type="graves123", sample_rate=16000, n_mels=40, f_min=20.0)
    feats, n = build_frontend(config)(torch.from_numpy(signal))
    assert feats.shape == (1, n.item(), 123)
    ref, tol = _reference("fbank", signal, 16000, num_mel_bins=40, use_energy=True)
    _assert_close(feats[0, :, :41], ref, tol, "fbank")
    _assert_close(feats[0], *_graves_reference(ref, tol), "fbank")


def _graves_reference(ref: np.ndarray, tol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaldi add-deltas (order 2, window 2) of a float64 fbank + energy and its bound: deltas
    are 9-tap filters, so the fbank's bounds pass through |taps|, plus the float32 rounding of
    a 9-term sum, 9 * EPS32 * sum |tap| |value| (with headroom)."""
    bound = (kaldi_add_deltas_reference(tol, 2, 2, absolute=True)
             + HEADROOM * 9 * EPS32 * kaldi_add_deltas_reference(np.abs(ref), 2, 2, absolute=True))
    return kaldi_add_deltas_reference(ref, 2, 2), bound


def kaldi_add_deltas_reference(feats: np.ndarray, order: int, window: int,
                               absolute: bool = False) -> np.ndarray:
    """Kaldi's DeltaFeatures::Process written out directly, frame by frame (with
    ``absolute``, the absolute values of its taps: how errors in ``feats`` spread)."""
    scales = [np.array([1.0])]
    for _ in range(order):
        prev = scales[-1]
        prev_offset = (len(prev) - 1) // 2
        cur_offset = prev_offset + window
        cur = np.zeros(len(prev) + 2 * window)
        normalizer = 0.0
        for j in range(-window, window + 1):
            normalizer += j * j
            for k in range(-prev_offset, prev_offset + 1):
                cur[j + k + cur_offset] += j * prev[k + prev_offset]
        scales.append(cur / normalizer)
    num_frames, dim = feats.shape
    out = np.zeros((num_frames, dim * (order + 1)))
    for frame in range(num_frames):
        for i, scale in enumerate(scales):
            max_offset = (len(scale) - 1) // 2
            for j in range(-max_offset, max_offset + 1):
                t = min(max(frame + j, 0), num_frames - 1)
                tap = abs(scale[j + max_offset]) if absolute else scale[j + max_offset]
                out[frame, i * dim : (i + 1) * dim] += tap * feats[t]
    return out


@pytest.mark.parametrize(("order", "window"), [(1, 2), (2, 2), (2, 1), (3, 3)])
def test_deltas_equal_kaldi_formula(order: int, window: int) -> None:
    rng = np.random.default_rng(order * 10 + window)
    for frames in (1, 2, 5, 37):
        feats = rng.normal(size=(frames, 6))
        ours = add_deltas(torch.from_numpy(feats)[None], torch.tensor([frames]), order, window)[0]
        # float64 throughout: <= 49 taps x |x| <~ 4 x 2e-16 ~ 4e-14.
        np.testing.assert_allclose(ours.numpy(), kaldi_add_deltas_reference(feats, order, window),
                                   atol=1e-12)


def test_delta_filters_known_values() -> None:
    """Window 2: Δ = (-2, -1, 0, 1, 2) / 10; the ΔΔ filter is that convolved with itself."""
    filters = delta_filters(2, 2)
    np.testing.assert_allclose(filters[1], np.arange(-2, 3) / 10)
    np.testing.assert_allclose(filters[2], np.convolve(np.arange(-2, 3), np.arange(-2, 3)) / 100)
    with pytest.raises(ValueError):
        delta_filters(1, 0)


def test_deltas_ignore_padding() -> None:
    """Each utterance's deltas replicate its own last frame, whatever the padding holds."""
    feats = torch.randn(2, 12, 3)
    lengths = torch.tensor([12, 7])
    junk = feats.clone()
    junk[1, 7:] = 1e3
    out = add_deltas(junk, lengths)
    alone = add_deltas(feats[1:2, :7], torch.tensor([7]))
    # Elementwise float32 products and sums in a fixed order (correctly rounded on any ISA):
    # the same values either way; junk of 1e3 leaking in would be >= 10 off.
    assert torch.allclose(out[1, :7], alone[0], atol=1e-6)
    assert torch.equal(out[1, 7:], torch.zeros_like(out[1, 7:]))


@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("type_", ["fbank", "mfcc", "graves123"])
def test_batched_equals_unbatched(fsdd_recordings: Path, snip_edges: bool, type_: str) -> None:
    """Padding never changes an utterance's frames (reflection at each utterance's own end)."""
    signals = _fsdd(fsdd_recordings) + [np.random.default_rng(0).normal(0, 0.1, 900).astype(np.float32)]
    config = FeatureConfig(type=type_, sample_rate=8000, n_mels=23, snip_edges=snip_edges)
    frontend = build_frontend(config)
    lengths = torch.tensor([len(s) for s in signals])
    batch = torch.full((len(signals), int(lengths.max())), 0.5)  # non-zero padding on purpose
    for i, s in enumerate(signals):
        batch[i, : len(s)] = torch.from_numpy(s)
    feats, n = frontend(batch, lengths)
    for i, s in enumerate(signals):
        alone, n_alone = frontend(torch.from_numpy(s))
        assert n[i] == n_alone[0] == alone.shape[1]
        # Batched and alone take different FFT/matmul paths: each is within the float32 bound
        # of the float64 reference, so they agree to twice it. Padding (0.5, i.e. 16384 on
        # Kaldi's scale) leaking into a reflected or last frame moves it by orders of
        # magnitude more, so no median-tightness check is needed here.
        _assert_close(feats[i, : n[i]], alone[0].double().numpy(), 2 * _bound(config, s), None)
        assert torch.equal(feats[i, n[i] :], torch.zeros_like(feats[i, n[i] :]))


def _bound(config: FeatureConfig, signal: np.ndarray) -> np.ndarray:
    """The per-element float32 bound of ``config``'s features of ``signal`` (Kaldi defaults
    otherwise: povey window, pre-emphasis 0.97, DC removal, 25/10 ms; MFCC: 13 ceps,
    lifter 22, energy)."""
    opts = dict(snip_edges=config.snip_edges, low_freq=config.f_min, num_mel_bins=config.n_mels)
    if config.type == "logmel":
        frontend = build_frontend(config)
        return logmel_reference(signal, config.sample_rate, frontend.n_fft, frontend.hop_length,
                                frontend.win_length, config.n_mels, config.f_min)[1]
    if config.type == "graves123":
        return _graves_reference(*_reference("fbank", signal, config.sample_rate, use_energy=True, **opts))[1]
    if config.type == "mfcc":
        return _reference("mfcc", signal, config.sample_rate, use_energy=True, **opts)[1]
    return _reference("fbank", signal, config.sample_rate, **opts)[1]


@settings(max_examples=40, deadline=None)
@given(num_samples=st.integers(0, 3000), snip=st.booleans(),
       shift_ms=st.sampled_from([10.0, 12.5, 20.0]), length_ms=st.sampled_from([20.0, 25.0, 30.0]))
def test_frame_count_matches_torchaudio(num_samples: int, snip: bool, shift_ms: float,
                                        length_ms: float) -> None:
    """Frame counts (and shapes) agree with torchaudio for any length, including 0 frames."""
    config = FeatureConfig(type="fbank", sample_rate=8000, n_mels=10, snip_edges=snip,
                           frame_shift_ms=shift_ms, frame_length_ms=length_ms, f_min=20.0)
    frontend = KaldiFbank(config)
    expected = int(kaldi_num_frames(torch.tensor(num_samples), frontend.win_length,
                                    frontend.hop_length, snip))
    if snip:
        assert expected == (0 if num_samples < frontend.win_length
                            else 1 + (num_samples - frontend.win_length) // frontend.hop_length)
    else:
        assert expected == (num_samples + frontend.hop_length // 2) // frontend.hop_length
    wave = torch.from_numpy(np.random.default_rng(num_samples).normal(0, 0.1, num_samples).astype(np.float32))
    feats, n = frontend(wave)
    assert feats.shape == (1, expected, 10) and n.item() == expected
    assert torch.isfinite(feats).all()
    if num_samples >= frontend.win_length:  # torchaudio asserts on shorter input
        ref = kaldi.fbank(wave[None] * 32768, sample_frequency=8000, num_mel_bins=10,
                          snip_edges=snip, frame_shift=shift_ms, frame_length=length_ms,
                          energy_floor=0.0)
        assert ref.shape[0] == expected


def test_digital_silence_and_clipping_stay_finite() -> None:
    """Silence hits the float-epsilon floor (log eps), never -inf; clipped audio is finite."""
    for type_ in ("fbank", "mfcc", "graves123"):
        frontend = build_frontend(FeatureConfig(type=type_, sample_rate=8000, n_mels=23,
                                                use_energy=True if type_ != "graves123" else None))
        silent, _ = frontend(torch.zeros(1, 4000))
        assert torch.isfinite(silent).all()
        clipped, _ = frontend(torch.clamp(torch.randn(1, 4000) * 10, -1.0, 1.0))
        assert torch.isfinite(clipped).all()
    fbank, _ = KaldiFbank(FeatureConfig(type="fbank", sample_rate=8000, n_mels=23))(torch.zeros(1, 800))
    assert torch.allclose(fbank, torch.full_like(fbank, float(np.log(np.finfo(np.float32).eps))))


def test_dither_is_off_by_default_and_random_when_on() -> None:
    wave = torch.randn(1, 4000) * 0.1
    config = FeatureConfig(type="fbank", sample_rate=8000, n_mels=23)
    assert torch.equal(KaldiFbank(config)(wave)[0], KaldiFbank(config)(wave)[0])
    config.dither = 1.0
    a, b = KaldiFbank(config)(wave)[0], KaldiFbank(config)(wave)[0]
    assert not torch.equal(a, b)
    assert (a - b).abs().max() < 1.0  # dither of one int16 step barely moves speech


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not usable")
@pytest.mark.parametrize("type_", ["logmel", "fbank", "mfcc", "graves123"])
def test_gpu_equals_cpu(fsdd_recordings: Path, type_: str) -> None:
    signals = _fsdd(fsdd_recordings)
    lengths = torch.tensor([len(s) for s in signals])
    batch = torch.zeros(len(signals), int(lengths.max()))
    for i, s in enumerate(signals):
        batch[i, : len(s)] = torch.from_numpy(s)
    config = FeatureConfig(type=type_, sample_rate=8000, n_mels=23)
    frontend = build_frontend(config)
    cpu, n_cpu = frontend(batch, lengths)
    gpu, n_gpu = frontend.to("cuda")(batch.cuda(), lengths.cuda())
    assert torch.equal(n_cpu, n_gpu.cpu())
    # cuFFT/cuBLAS and the CPU's kernels are each within the float32 bound of the float64
    # reference, so they agree to twice it.
    for i, s in enumerate(signals):
        _assert_close(gpu.cpu()[i, : n_cpu[i]], cpu[i, : n_cpu[i]].double().numpy(), 2 * _bound(config, s), None)


def test_kaldi_windows_match_torchaudio() -> None:
    from torchaudio.compliance.kaldi import _feature_window_function

    from asr.features.kaldi import WINDOW_TYPES, kaldi_window

    for kind, size in itertools.product(WINDOW_TYPES, (200, 400)):
        ref = _feature_window_function(kind, size, 0.42, torch.device("cpu"), torch.float32)
        # Values in [0, 1] from cos/pow in float32 by two formulas: a few ulps (~2e-7) apart.
        assert torch.allclose(kaldi_window(kind, size), ref, atol=1e-6)
