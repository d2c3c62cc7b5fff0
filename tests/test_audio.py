"""asr.audio: decoding, mono mixing, resampling and the errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio import audio_duration, load_audio, resample, to_mono
from asr.errors import AudioError


@pytest.mark.parametrize(
    ("fmt", "subtype", "tolerance"),
    [
        ("WAV", "PCM_16", 1.0 / 2**15),
        ("WAV", "PCM_24", 1.0 / 2**23),
        ("WAV", "FLOAT", 0.0),
        ("FLAC", "PCM_16", 1.0 / 2**15),
    ],
)
def test_load_formats_round_trip(
    make_tone, tmp_path: Path, fmt: str, subtype: str, tolerance: float
) -> None:
    """Written samples come back as float32 within one quantisation step of the format."""
    signal = make_tone(0.25, 16000, freq=300.0, amplitude=0.7)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, signal, 16000, format=fmt, subtype=subtype)
    samples, rate = load_audio(path)
    assert rate == 16000
    assert samples.dtype == np.float32
    assert samples.shape == signal.shape
    assert np.max(np.abs(samples - signal)) <= tolerance


def test_int16_values_are_scaled_by_32768(tmp_path: Path) -> None:
    path = tmp_path / "ints.wav"
    ints = np.array([0, 16384, -32768, 32767, -1], dtype=np.int16)
    sf.write(path, ints, 8000, subtype="PCM_16")
    samples, _ = load_audio(path)
    np.testing.assert_array_equal(samples, ints.astype(np.float32) / 32768)


def test_tiny_wav_fixture(tiny_wav: Path) -> None:
    samples, rate = load_audio(tiny_wav)
    assert rate == 16000 and len(samples) == 8000
    assert audio_duration(tiny_wav) == pytest.approx(0.5)


def test_stereo_is_mixed_to_mono_mean(make_tone, tmp_path: Path) -> None:
    left = make_tone(0.1, 8000, 200.0, 0.5)
    right = make_tone(0.1, 8000, 700.0, 0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    samples, _ = load_audio(path)
    np.testing.assert_allclose(samples, (left + right) / 2, atol=1e-7)
    only_right, _ = load_audio(path, channel=1)
    np.testing.assert_allclose(only_right, right, atol=1e-7)
    with pytest.raises(AudioError, match="channel 2"):
        load_audio(path, channel=2)


def test_to_mono_passes_1d_through() -> None:
    x = np.arange(5, dtype=np.float32)
    assert to_mono(x) is x
    np.testing.assert_array_equal(to_mono(np.stack([x, 3 * x], axis=1)), 2 * x)


def test_resample_8k_to_16k_keeps_duration_and_tone(make_tone, tmp_path: Path) -> None:
    signal = make_tone(1.0, 8000, freq=500.0)
    path = tmp_path / "8k.wav"
    sf.write(path, signal, 8000, subtype="FLOAT")
    samples, rate = load_audio(path, sample_rate=16000)
    assert rate == 16000
    assert abs(len(samples) - 16000) <= 1
    assert len(samples) / rate == pytest.approx(1.0, abs=1e-3)
    # Away from the edges it is still the 500 Hz tone.
    expected = make_tone(1.0, 16000, freq=500.0)[: len(samples)]
    assert np.max(np.abs(samples[800:-800] - expected[800:-800])) < 1e-2
    assert resample(signal, 8000, 8000) is signal


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match="no such file") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_directory(tmp_path: Path) -> None:
    directory = tmp_path / "dir.wav"
    directory.mkdir()
    with pytest.raises(AudioError, match="is a directory") as info:
        load_audio(directory)
    assert str(directory) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"this is not audio\n" * 10,
        bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    ],
    ids=["empty", "text", "random-bytes"],
)
def test_undecodable_files_name_the_path(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_header_only_wav_has_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match="no audio samples") as info:
        load_audio(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_float_samples(make_tone, tmp_path: Path, bad: float) -> None:
    signal = make_tone(0.1, 16000)
    signal[100] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, signal, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_audio_duration_errors_on_non_audio(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_text("hello")
    with pytest.raises(AudioError) as info:
        audio_duration(path)
    assert str(path) in str(info.value)
