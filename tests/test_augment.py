"""asr.augment: SpecAugment masks and time warp, noise at an SNR, on-the-fly speed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.augment import (
    SPEED_FACTORS,
    NoiseSource,
    SpecAugment,
    WaveformAugment,
    add_noise,
    perturbed_length,
    speed_factors,
    time_warp,
)
from asr.config import AugmentConfig
from asr.errors import ConfigError


def _masked(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    return before != after


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), f=st.integers(0, 10), t=st.integers(0, 30),
       nf=st.integers(0, 3), nt=st.integers(0, 3), ratio=st.floats(0.0, 1.0))
def test_masks_respect_their_limits(seed: int, f: int, t: int, nf: int, nt: int, ratio: float) -> None:
    """Masked cells form at most nf frequency bands of <= F channels and nt time spans of
    <= min(T, p * length) frames, only inside each utterance; padding is untouched."""
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(3, 60, 12, generator=gen) + 5.0  # never exactly 0
    lengths = torch.tensor([60, 41, 9])
    aug = SpecAugment(AugmentConfig(freq_masks=nf, freq_mask_width=f, time_masks=nt,
                                    time_mask_width=t, time_mask_ratio=ratio), gen)
    out = aug(feats, lengths)
    assert out.shape == feats.shape
    masked = _masked(feats, out)
    assert torch.all(out[masked] == 0.0)
    for i, length in enumerate(lengths.tolist()):
        assert not masked[i, length:].any()
        valid = masked[i, :length]
        full_rows = valid.all(dim=1)  # frames masked in every channel: time masks
        full_cols = valid.all(dim=0)  # channels masked in every frame: frequency masks
        # Cells masked outside full rows/cols would be a mask that is neither.
        assert torch.equal(valid, full_rows[:, None] | full_cols[None, :])
        limit = min(t, int(np.floor(length * ratio)))
        if not full_rows.all():
            assert full_rows.sum() <= nt * limit
        if not full_cols.all():
            assert full_cols.sum() <= nf * f


def test_masks_do_happen_and_mean_value() -> None:
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(4, 100, 40, generator=gen) + 3.0
    lengths = torch.full((4,), 100)
    cfg = AugmentConfig(freq_masks=2, freq_mask_width=10, time_masks=2, time_mask_width=20,
                        mask_value="mean")
    out = SpecAugment(cfg, gen)(feats, lengths)
    masked = _masked(feats, out)
    assert 0.02 < masked.float().mean() < 0.6
    mean = feats.mean(dim=1, keepdim=True).expand_as(feats)
    # Two float32 means of 100 values |x| <~ 7, summed in any order: <= 100 eps * 3 ~ 2e-5
    # apart, under allclose's 1e-5 * |mean ~ 3| + 1e-8 = 3e-5.
    assert torch.allclose(out[masked], mean[masked])


def test_same_generator_seed_same_masks() -> None:
    feats = torch.randn(2, 50, 20)
    lengths = torch.tensor([50, 30])
    cfg = AugmentConfig(time_warp=5)
    a = SpecAugment(cfg, torch.Generator().manual_seed(7))(feats, lengths)
    b = SpecAugment(cfg, torch.Generator().manual_seed(7))(feats, lengths)
    assert torch.equal(a, b)


def test_time_warp_keeps_shape_and_endpoints() -> None:
    feats = torch.arange(40, dtype=torch.float32).repeat(2, 1).unsqueeze(-1).repeat(1, 1, 3)
    lengths = torch.tensor([40, 25])
    gen = torch.Generator().manual_seed(3)
    out = time_warp(feats, lengths, 5, gen)
    assert out.shape == feats.shape
    assert torch.equal(time_warp(feats, lengths, 0), feats)
    for i, length in enumerate(lengths.tolist()):
        ramp = out[i, :length, 0]
        assert torch.all(ramp[1:] >= ramp[:-1] - 1e-5)  # a warped ramp is still increasing
        assert ramp[0].item() == pytest.approx(0.0, abs=0.5)
        assert ramp[-1].item() == pytest.approx(length - 1, abs=0.5)
        assert torch.equal(out[i, length:], feats[i, length:])
    assert not torch.equal(out[0, :40], feats[0, :40])


def test_invalid_settings() -> None:
    with pytest.raises(ConfigError, match="time_mask_ratio"):
        SpecAugment(AugmentConfig(time_mask_ratio=1.5))
    with pytest.raises(ConfigError, match="freq_masks"):
        SpecAugment(AugmentConfig(freq_masks=-1))


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 30.0])
def test_add_noise_reaches_the_snr(make_tone, snr_db: float) -> None:
    signal = make_tone(1.0, 8000, 300.0, 0.3)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(3000).astype(np.float32) * 5  # shorter: tiled
    mixed = add_noise(signal, noise, snr_db, rng)
    added = mixed - signal
    measured = 10 * np.log10(np.mean(signal.astype(np.float64) ** 2) / np.mean(added.astype(np.float64) ** 2))
    assert measured == pytest.approx(snr_db, abs=0.01)
    silence = np.zeros(100, dtype=np.float32)
    assert np.array_equal(add_noise(silence, noise, 0.0, rng), silence)  # SNR undefined


def test_noise_source_from_directory_and_list(tmp_path: Path, make_tone) -> None:
    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "hum.wav", make_tone(0.5, 16000, 50.0), 16000)
    (tmp_path / "noise" / "README.txt").write_text("not audio")
    source = NoiseSource(tmp_path / "noise", 8000)
    assert [p.name for p in source.paths] == ["hum.wav"]
    assert len(source.sample(100, np.random.default_rng(0))) == 4000  # resampled to 8 kHz
    listing = tmp_path / "noise.list"
    listing.write_text(f"{tmp_path / 'noise' / 'hum.wav'}\n")
    assert NoiseSource(listing, 8000).paths == [tmp_path / "noise" / "hum.wav"]
    white = NoiseSource(None, 8000).sample(500, np.random.default_rng(0))
    assert white.shape == (500,) and 0.8 < white.std() < 1.2
    with pytest.raises(ConfigError, match="no such directory"):
        NoiseSource(tmp_path / "nope", 8000)


def test_waveform_augment_speed_and_noise(make_tone) -> None:
    signal = make_tone(1.0, 8000, 300.0, 0.3)
    aug = WaveformAugment(AugmentConfig(speed_perturb=True), 8000, seed=0)
    lengths = sorted({len(aug(signal)) for _ in range(30)})
    assert len(lengths) == 3  # all three factors were drawn
    for n, factor in zip(lengths, (1.1, 1.0, 0.9), strict=True):
        assert abs(n - 8000 / factor) <= 1
    noisy = WaveformAugment(AugmentConfig(noise_snr_db=10.0, noise_prob=1.0), 8000, seed=0)
    out = noisy(signal)
    assert out.shape == signal.shape and not np.array_equal(out, signal)
    assert not WaveformAugment(AugmentConfig(), 8000).active


def test_speed_factors_are_chosen_per_epoch_and_played_as_given(make_tone) -> None:
    factors = speed_factors(0, 3, 600)
    assert factors == speed_factors(0, 3, 600)  # from (seed, epoch) alone
    assert factors != speed_factors(0, 4, 600) and factors != speed_factors(1, 3, 600)
    # Uniform over the three: 200 each expected, binomial sd 11.5, so 150-250 is over 4 sd.
    assert all(150 <= factors.count(f) <= 250 for f in SPEED_FACTORS)
    signal = make_tone(1.0, 8000, 300.0, 0.3)
    aug = WaveformAugment(AugmentConfig(speed_perturb=True), 8000, seed=0)
    for factor in SPEED_FACTORS:
        assert abs(len(aug(signal, factor)) - perturbed_length(8000, factor)) <= 1
    assert perturbed_length(100, 0.9) == 111 and perturbed_length(100, 1.1) == 91
    assert perturbed_length(1, 1.1) == 1
