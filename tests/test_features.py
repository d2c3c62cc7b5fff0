"""asr.features: log-mel front end against librosa and stored values, padding invariance, CMVN,
and the extractor builder."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

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

    Tolerance: max |difference| <= 1e-3 in the log domain (natural log), compared where the
    librosa mel power is above 1e-8 (below it float32 rounding of tiny powers dominates).
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
        power = librosa.feature.melspectrogram(
            y=signal,
            sr=8000,
            n_fft=256,
            hop_length=80,
            win_length=200,
            window="hann",
            center=True,
            pad_mode="constant",
            power=2.0,
            n_mels=40,
            fmin=20.0,
            fmax=3800.0,
            htk=mel_scale == "htk",
            norm=mel_norm,
        )
        expected = np.log(np.maximum(power, config.log_floor)).T  # (frames, n_mels)
        feats, lengths = frontend(torch.from_numpy(signal))
        ours = feats[0].numpy()
        assert ours.shape == expected.shape
        assert lengths.tolist() == [expected.shape[0]]
        mask = power.T > 1e-8
        assert mask.mean() > 0.5  # most of the spectrogram is compared
        assert np.max(np.abs(ours - expected)[mask]) <= 1e-3


def test_scales_differ() -> None:
    """The htk and slaney mel scales really give different filterbanks (the test above is not vacuous)."""
    slaney = LogMel(FeatureConfig(sample_rate=8000, n_mels=40, mel_scale="slaney")).mel_basis
    htk = LogMel(FeatureConfig(sample_rate=8000, n_mels=40, mel_scale="htk")).mel_basis
    assert not torch.allclose(slaney, htk, atol=1e-4)


def test_padding_never_changes_frames(fsdd_recordings: Path) -> None:
    """Each utterance of a zero-padded batch gets exactly its lone features (within 1e-4)."""
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
        diff = (feats[i, : out_lengths[i]] - alone[0]).abs().max().item()
        assert diff <= 1e-4


def test_padding_garbage_is_ignored() -> None:
    """Non-zero junk past an utterance's length does not leak into its frames."""
    frontend = LogMel(FeatureConfig(sample_rate=16000, n_mels=20))
    signal = torch.randn(3000) * 0.1
    batch = torch.randn(2, 5000)
    batch[0, :3000] = signal
    feats, lengths = frontend(batch, torch.tensor([3000, 5000]))
    alone, _ = frontend(signal)
    assert lengths.tolist() == [1 + 3000 // 160, 1 + 5000 // 160]
    assert (feats[0, : lengths[0]] - alone[0]).abs().max().item() <= 1e-4


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
        np.testing.assert_allclose(valid.mean(0).numpy(), 0.0, atol=1e-5)
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
    """The default front end (type logmel, as the digits/yesno models use) gives exactly the
    numbers the toolkit gave before feature types existed (stored from that version)."""
    signal, rate = sf.read(fsdd_recordings / "0_george_0.wav", dtype="float32")
    assert (rate, len(signal)) == (8000, 2384)
    frontend = build_frontend(FeatureConfig(sample_rate=8000, n_mels=40))
    assert isinstance(frontend, LogMel)
    feats, lengths = frontend(torch.from_numpy(signal))
    feats = feats[0].double()
    assert feats.shape == (30, 40) and lengths.tolist() == [30]
    assert feats.sum().item() == pytest.approx(-8698.975963393634, abs=1e-3)
    assert feats.abs().sum().item() == pytest.approx(8702.42143278796, abs=1e-3)
    stored = {(0, 0): -5.052012920379639, (10, 5): 0.3281460404396057,
              (20, 39): -9.563857078552246, (29, 20): -9.791857719421387}
    for (t, d), value in stored.items():
        assert feats[t, d].item() == pytest.approx(value, abs=1e-5)


def test_logmel_16k_default_config_stored_values() -> None:
    """FeatureConfig() (16 kHz, 80 mels) on a synthetic tone + chirp, against stored values."""
    t = np.arange(4000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t * t)).astype(np.float32)
    feats, _ = build_frontend(FeatureConfig())(torch.from_numpy(x))
    feats = feats[0].double()
    assert feats.shape == (26, 80)
    assert feats.sum().item() == pytest.approx(-30847.690905471565, abs=1e-2)
    for (i, j), value in {(0, 0): -1.029699444770813, (12, 40): -21.522645950317383,
                          (25, 79): -15.69202995300293}.items():
        assert feats[i, j].item() == pytest.approx(value, abs=1e-5)


def test_logmel_matches_the_formula_it_always_used() -> None:
    """Centred, Hann-windowed torch.stft power -> librosa mel filters -> log(max(., floor))."""
    config = FeatureConfig(sample_rate=8000, n_mels=40)
    signal = torch.from_numpy(np.random.default_rng(3).normal(0, 0.1, 3000).astype(np.float32))
    spec = torch.stft(signal, 256, 80, 200, torch.hann_window(200), center=True,
                      pad_mode="constant", return_complex=True)
    mel = torch.from_numpy(librosa.filters.mel(sr=8000, n_fft=256, n_mels=40)).float()
    expected = torch.log(torch.clamp(mel @ spec.abs().square(), min=1e-10)).T
    feats, _ = LogMel(config)(signal)
    assert torch.allclose(feats[0], expected, atol=1e-4)


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
