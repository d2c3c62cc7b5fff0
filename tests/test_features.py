"""asr.features: log-mel front end against librosa (in float64, with per-element float32
bounds from fp_bounds), padding invariance, CMVN, and the extractor builder."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from fp_bounds import logmel_reference

from asr.config import FeatureConfig
from asr.errors import ConfigError
from asr.features import (
    CmvnStats,
    FeatureNormalizer,
    LogMel,
    build_frontend,
    feature_dim,
    frame_lengths,
    utterance_cmvn,
)

FSDD_FILES = [
    "0_george_0.wav",
    "3_jackson_12.wav",
    "7_nicolas_33.wav",
    "9_theo_47.wav",
    "5_yweweler_20.wav",
]


def _fsdd(recordings: Path) -> list[np.ndarray]:
    signals = []
    for name in FSDD_FILES:
        path = recordings / name
        if not path.is_file():
            pytest.skip(f"{path} not present")
        samples, rate = sf.read(path, dtype="float32")
        assert rate == 8000
        signals.append(samples)
    return signals


@pytest.mark.parametrize(
    ("mel_scale", "mel_norm"), [("slaney", "slaney"), ("htk", None), ("htk", "slaney")]
)
def test_logmel_equals_librosa_on_fsdd(fsdd_recordings: Path, mel_scale: str, mel_norm) -> None:
    """LogMel == log(max(librosa.feature.melspectrogram(...), floor)) on real 8 kHz recordings.

    librosa computes in float64; every float32 value must be within its bound (fp_bounds:
    FFT and filterbank rounding relative to the frame's energy, with 4x headroom), which is
    ~1e-5 where the band holds real power and loose only far below the frame's energy. The
    median bound must stay under 1e-4, so a wrong window, scale or norm (1e-2 and more
    nearly everywhere) cannot pass.
    """
    config = FeatureConfig(
        sample_rate=8000,
        n_mels=40,
        mel_scale=mel_scale,
        mel_norm=mel_norm,
        f_min=20.0,
        f_max=3800.0,
    )
    frontend = LogMel(config)
    assert (frontend.win_length, frontend.hop_length, frontend.n_fft) == (200, 80, 256)
    for signal in _fsdd(fsdd_recordings):
        expected, tol = logmel_reference(signal, 8000, n_fft=256, hop_length=80, win_length=200,
                                         n_mels=40, f_min=20.0, f_max=3800.0,
                                         htk=mel_scale == "htk", norm=mel_norm,
                                         floor=config.log_floor)
        feats, lengths = frontend(torch.from_numpy(signal))
        ours = feats[0].double().numpy()
        assert ours.shape == expected.shape
        assert lengths.tolist() == [expected.shape[0]]
        assert np.median(tol) < 1e-4
        assert np.max(np.abs(ours - expected) / tol) <= 1.0


def test_scales_differ() -> None:
    """The htk and slaney mel scales really give different filterbanks (the test above is not vacuous)."""
    slaney = LogMel(FeatureConfig(sample_rate=8000, n_mels=40, mel_scale="slaney")).mel_basis
    htk = LogMel(FeatureConfig(sample_rate=8000, n_mels=40, mel_scale="htk")).mel_basis
    assert not torch.allclose(slaney, htk, atol=1e-4)


def test_padding_never_changes_frames(fsdd_recordings: Path) -> None:
    """Each utterance of a zero-padded batch gets its lone features: batched and lone STFT and
    matmul may take different kernels, each within the float32 bound of the float64 reference,
    so they agree to twice it (a frame that saw another utterance's samples would not)."""
    frontend = LogMel(FeatureConfig(sample_rate=8000, n_mels=40))
    signals = _fsdd(fsdd_recordings)
    lengths = torch.tensor([len(s) for s in signals])
    assert len(set(lengths.tolist())) == len(signals)  # all different
    batch = torch.zeros(len(signals), int(lengths.max()))
    for i, signal in enumerate(signals):
        batch[i, : len(signal)] = torch.from_numpy(signal)
    feats, out_lengths = frontend(batch, lengths)
    for i, signal in enumerate(signals):
        alone, alone_len = frontend(torch.from_numpy(signal))
        assert out_lengths[i] == alone_len[0] == alone.shape[1]
        _, tol = logmel_reference(signal, 8000, 256, 80, 200, 40)
        diff = (feats[i, : out_lengths[i]] - alone[0]).abs().double().numpy()
        assert np.max(diff / (2 * tol)) <= 1.0


def test_padding_garbage_is_ignored() -> None:
    """Non-zero junk past an utterance's length does not leak into its frames."""
    frontend = LogMel(FeatureConfig(sample_rate=16000, n_mels=20))
    signal = torch.randn(3000) * 0.1
    batch = torch.randn(2, 5000)
    batch[0, :3000] = signal
    feats, lengths = frontend(batch, torch.tensor([3000, 5000]))
    alone, _ = frontend(signal)
    assert lengths.tolist() == [1 + 3000 // 160, 1 + 5000 // 160]
    # Twice the float32 bound (batched and lone kernels differ); junk of 10x the signal's
    # level in the last frames' windows would move them by ~1 in the log domain.
    _, tol = logmel_reference(signal.numpy(), 16000, 512, 160, 400, 20)
    diff = (feats[0, : lengths[0]] - alone[0]).abs().double().numpy()
    assert np.max(diff / (2 * tol)) <= 1.0


def test_digital_silence_is_finite() -> None:
    config = FeatureConfig(sample_rate=16000, n_mels=40)
    feats, _ = LogMel(config)(torch.zeros(1, 4000))
    assert torch.isfinite(feats).all()
    assert torch.allclose(feats, torch.full_like(feats, float(np.log(config.log_floor))))


@pytest.mark.parametrize("num_samples", [0, 1, 79, 80, 81, 159, 160, 4000, 4001])
def test_frame_count_formula(num_samples: int) -> None:
    """A centred STFT gives 1 + samples // hop frames."""
    frontend = LogMel(FeatureConfig(sample_rate=8000, n_mels=10))  # hop 80
    assert frontend.hop_length == 80
    expected = 1 + num_samples // 80
    assert frame_lengths(torch.tensor([num_samples]), 80).item() == expected
    if num_samples > 0:
        feats, lengths = frontend(torch.randn(1, num_samples))
        assert feats.shape == (1, expected, 10)
        assert lengths.item() == expected


def test_n_fft_defaults_and_validation() -> None:
    frontend = LogMel(FeatureConfig(sample_rate=16000))  # 400-sample window
    assert (frontend.win_length, frontend.hop_length, frontend.n_fft) == (400, 160, 512)
    assert frontend.dim == 80
    with pytest.raises(ValueError, match="shorter than the window"):
        LogMel(FeatureConfig(sample_rate=16000, n_fft=256))


def test_utterance_cmvn_zero_mean_unit_variance_and_zero_padding() -> None:
    torch.manual_seed(0)
    feats = torch.randn(3, 50, 6) * 4 + 7
    lengths = torch.tensor([50, 20, 3])
    out = utterance_cmvn(feats, lengths)
    for i, length in enumerate(lengths.tolist()):
        valid = out[i, :length].double()
        # float32 mean of <= 50 values |x| <~ 20: off by <= 50 * eps * 20 ~ 6e-5, i.e. 1.5e-5
        # after dividing by std 4 (worst case; eps * sqrt(50) typical, 7x under 1e-5).
        np.testing.assert_allclose(valid.mean(0).numpy(), 0.0, atol=1e-5)
        # var/(var + 1e-5) ~ 1 - 1e-6 plus float32 rounding ~1e-6; the biased/unbiased
        # mix-up (1/n off, >= 2e-2 here) still fails.
        np.testing.assert_allclose(valid.var(0, unbiased=False).numpy(), 1.0, atol=1e-3)
        assert torch.equal(out[i, length:], torch.zeros_like(out[i, length:]))
    # Padding content does not matter.
    junk = feats.clone()
    junk[1, 20:] = 1e6
    assert torch.allclose(utterance_cmvn(junk, lengths), out)


def test_cmvn_stats_match_numpy() -> None:
    rng = np.random.default_rng(1)
    utts = [rng.normal(3.0, 2.0, size=(n, 4)).astype(np.float32) for n in (10, 37, 5)]
    stats = CmvnStats(4)
    for utt in utts:
        stats.add(torch.from_numpy(utt))
    everything = np.concatenate(utts).astype(np.float64)
    mean, std = stats.mean_std(eps=0.0)
    assert stats.count == 52
    # float64 sums, then one float32 rounding (6e-8 relative): rtol 1e-6 is 16x over it.
    np.testing.assert_allclose(mean.numpy(), everything.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), everything.std(0), rtol=1e-5)
    _, std_eps = stats.mean_std(eps=1e-5)
    np.testing.assert_allclose(std_eps.numpy(), np.sqrt(everything.var(0) + 1e-5), rtol=1e-5)
    with pytest.raises(ValueError, match="no frames"):
        CmvnStats(4).mean_std()


def test_feature_normalizer_modes() -> None:
    feats = torch.randn(2, 7, 3) * 2 + 1
    lengths = torch.tensor([7, 4])
    global_norm = FeatureNormalizer("global", 3)
    mean, std = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 4.0, 0.5])
    global_norm.set_stats(mean, std)
    assert torch.allclose(global_norm(feats, lengths), (feats - mean) / std)
    assert set(global_norm.state_dict()) == {"mean", "std"}
    assert torch.equal(FeatureNormalizer("none", 3)(feats, lengths), feats)
    assert torch.allclose(
        FeatureNormalizer("utterance", 3)(feats, lengths), utterance_cmvn(feats, lengths)
    )
    # speaker: features arrive normalised by their speaker's statistics; the model passes them.
    assert torch.equal(FeatureNormalizer("speaker", 3)(feats, lengths), feats)
    with pytest.raises(ValueError, match="unknown CMVN mode"):
        FeatureNormalizer("channel", 3)


def test_logmel_features_unchanged_from_stored_values(fsdd_recordings: Path) -> None:
    """The default front end (type logmel, as the digits/yesno models use) gives the numbers
    the toolkit always gave: librosa's log-mel (8 kHz, 200/80/256, 40 slaney mels, 0..4 kHz,
    floor 1e-10), computed here in float64, every value within its float32 bound.

    (Values once stored from one machine differ from another's by float32 rounding; the
    float64 reference checks the same formula without being one machine's output.)"""
    signal, rate = sf.read(fsdd_recordings / "0_george_0.wav", dtype="float32")
    assert (rate, len(signal)) == (8000, 2384)
    frontend = build_frontend(FeatureConfig(sample_rate=8000, n_mels=40))
    assert isinstance(frontend, LogMel)
    feats, lengths = frontend(torch.from_numpy(signal))
    feats = feats[0].double().numpy()
    assert feats.shape == (30, 40) and lengths.tolist() == [30]
    expected, tol = logmel_reference(signal, 8000, n_fft=256, hop_length=80, win_length=200,
                                     n_mels=40, f_min=0.0, f_max=None, htk=False, norm="slaney",
                                     floor=1e-10)
    assert np.median(tol) < 1e-4  # the check is tight where it matters
    assert np.max(np.abs(feats - expected) / tol) <= 1.0


def test_logmel_16k_default_config_stored_values() -> None:
    """FeatureConfig() (16 kHz, 80 mels) on a synthetic tone + chirp equals librosa's log-mel
    with the documented defaults (400-sample periodic Hann window, hop 160, n_fft 512, 80
    slaney-normalised slaney mels over 0..8 kHz, floor 1e-10) in float64, each value within its
    float32 bound. The chirp leaves many bands ~100 dB below their frame (bounds up to ~0.4
    there), but most bounds are < 1e-3, which any change of default would exceed."""
    t = np.arange(4000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t * t)).astype(np.float32)
    feats, _ = build_frontend(FeatureConfig())(torch.from_numpy(x))
    feats = feats[0].double().numpy()
    assert feats.shape == (26, 80)
    expected, tol = logmel_reference(x, 16000, n_fft=512, hop_length=160, win_length=400, n_mels=80,
                                     f_min=0.0, f_max=None, htk=False, norm="slaney", floor=1e-10)
    assert (tol < 1e-3).mean() > 0.5
    assert np.max(np.abs(feats - expected) / tol) <= 1.0


def test_logmel_matches_the_formula_it_always_used() -> None:
    """Centred, Hann-windowed torch.stft power -> librosa mel filters -> log(max(., floor)).
    Both sides are float32 but may differ in |X|^2 and matmul kernels: within twice the
    float32 bound of the float64 reference (noise at 0.1 keeps every band well above it)."""
    config = FeatureConfig(sample_rate=8000, n_mels=40)
    signal = torch.from_numpy(np.random.default_rng(3).normal(0, 0.1, 3000).astype(np.float32))
    spec = torch.stft(signal, 256, 80, 200, torch.hann_window(200), center=True,
                      pad_mode="constant", return_complex=True)
    mel = torch.from_numpy(librosa.filters.mel(sr=8000, n_fft=256, n_mels=40)).float()
    expected = torch.log(torch.clamp(mel @ spec.abs().square(), min=1e-10)).T
    feats, _ = LogMel(config)(signal)
    _, tol = logmel_reference(signal.numpy(), 8000, 256, 80, 200, 40)
    assert np.max((feats[0] - expected).abs().double().numpy() / (2 * tol)) <= 1.0


@pytest.mark.parametrize(
    ("overrides", "cls", "dim"),
    [
        ({}, "LogMel", 80),
        ({"type": "fbank", "n_mels": 40}, "KaldiFbank", 40),
        ({"type": "fbank", "n_mels": 40, "use_energy": True}, "KaldiFbank", 41),
        ({"type": "mfcc", "n_mels": 23}, "KaldiMfcc", 13),
        ({"type": "graves123", "n_mels": 40}, "Deltas", 123),
        ({"type": "logmel", "n_mels": 40, "delta_order": 1}, "Deltas", 80),
        ({"type": "fbank", "n_mels": 40, "delta_order": 2}, "Deltas", 120),
    ],
)
def test_build_frontend_types_and_dims(overrides: dict, cls: str, dim: int) -> None:
    config = FeatureConfig(**overrides)
    frontend = build_frontend(config)
    assert type(frontend).__name__ == cls
    assert frontend.dim == feature_dim(config) == dim
    feats, lengths = frontend(torch.randn(2, 4000) * 0.1, torch.tensor([4000, 2500]))
    assert feats.shape[2] == dim
    assert lengths.tolist() == frontend.num_frames(torch.tensor([4000, 2500])).tolist()
    assert torch.isfinite(feats).all()


def test_build_frontend_config_errors() -> None:
    with pytest.raises(ConfigError, match="graves123 always has"):
        build_frontend(FeatureConfig(type="graves123", delta_order=1))
    with pytest.raises(ConfigError, match="n_fft=300"):
        build_frontend(FeatureConfig(type="fbank", n_fft=300))
    with pytest.raises(ConfigError, match="delta_order"):
        feature_dim(FeatureConfig(delta_order=-1))


def test_standalone_speaker_cmvn_normalises_each_input() -> None:
    """At inference with cmvn: speaker, each input is its own speaker."""
    config = FeatureConfig(sample_rate=8000, n_mels=20, cmvn="speaker")
    plain = build_frontend(config)
    alone = build_frontend(config, standalone=True)
    wave = torch.randn(2, 3000) * 0.1
    lengths = torch.tensor([3000, 1700])
    raw, n = plain(wave, lengths)
    normed, n2 = alone(wave, lengths)
    assert torch.equal(n, n2) and alone.dim == plain.dim and alone.hop_length == plain.hop_length
    assert torch.allclose(normed, utterance_cmvn(raw, n))
    assert not isinstance(build_frontend(FeatureConfig(cmvn="global"), standalone=True), type(alone))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_samples_never_reach_the_features(bad: float) -> None:
    """The front end zeroes non-finite samples (asr.audio already refuses such files)."""
    for config in (FeatureConfig(sample_rate=8000, n_mels=20),
                   FeatureConfig(type="graves123", sample_rate=8000, n_mels=20)):
        wave = torch.randn(1, 2000) * 0.1
        wave[0, 500] = bad
        feats, _ = build_frontend(config)(wave)
        assert torch.isfinite(feats).all()
        clean = wave.clone()
        clean[0, 500] = 0.0
        assert torch.equal(feats, build_frontend(config)(clean)[0])


@pytest.mark.parametrize(
    ("preset", "type_", "dim"),
    [("logmel40_8k", "logmel", 40), ("logmel80_16k", "logmel", 80), ("fbank80_16k", "fbank", 80),
     ("mfcc13_16k", "mfcc", 13), ("graves123_16k", "graves123", 123),
     ("graves123_8k", "graves123", 123)],
)
def test_feature_presets(preset: str, type_: str, dim: int) -> None:
    from asr.config import load_config

    path = Path(__file__).resolve().parents[1] / "conf" / "features" / f"{preset}.yaml"
    config = load_config([path]).features
    frontend = build_frontend(config)
    assert config.type == type_ and frontend.dim == feature_dim(config) == dim
    feats, _ = frontend(torch.randn(1, config.sample_rate // 2) * 0.1)
    assert feats.shape[2] == dim and torch.isfinite(feats).all()
