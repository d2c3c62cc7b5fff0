"""asr.audio: every format, headerless PCM, stdin, the ffmpeg fallback, block-wise reading of\nlong files, mono mixing, resampling, and the documented result of each bad input."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import RawFormat, audio_duration, load_audio, read_blocks, resample, to_mono
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


# -- formats -------------------------------------------------------------------------------------


def _supported(fmt: str, subtype: str) -> bool:
    return fmt in sf.available_formats() and subtype in sf.available_subtypes(fmt)


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate", "suffix", "tolerance"),
    [
        ("WAV", "PCM_U8", 8000, "wav", 1.0 / 2**7),
        ("WAV", "PCM_32", 16000, "wav", 1.0 / 2**31),
        ("WAV", "DOUBLE", 16000, "wav", 0.0),
        ("WAV", "ULAW", 8000, "wav", 0.02),
        ("WAV", "ALAW", 8000, "wav", 0.02),
        ("FLAC", "PCM_24", 16000, "flac", 1.0 / 2**23),
        ("NIST", "PCM_16", 16000, "sph", 1.0 / 2**15),
        ("AIFF", "PCM_16", 16000, "aiff", 1.0 / 2**15),
        ("OGG", "VORBIS", 16000, "ogg", None),
        ("OGG", "OPUS", 48000, "opus", None),
        ("MP3", "MPEG_LAYER_III", 16000, "mp3", None),
    ],
)
def test_libsndfile_formats(make_tone, tmp_path: Path, fmt, subtype, rate, suffix, tolerance) -> None:
    """Every format libsndfile reads here comes back as the written tone: sample-exact within
    one quantisation step for PCM, the same 440 Hz tone and duration for lossy codecs."""
    if not _supported(fmt, subtype):
        pytest.skip(f"libsndfile here cannot write {fmt}/{subtype}")
    signal = make_tone(0.5, rate, freq=440.0, amplitude=0.5)
    path = tmp_path / f"x.{suffix}"
    sf.write(path, signal, rate, format=fmt, subtype=subtype)
    samples, got_rate = load_audio(path)
    assert got_rate == rate and samples.dtype == np.float32 and samples.ndim == 1
    if tolerance is not None:
        assert samples.shape == signal.shape
        assert np.max(np.abs(samples - signal)) <= tolerance + 1e-7
    else:
        assert abs(len(samples) - len(signal)) <= 0.05 * rate
        assert _peak_hz(samples, rate) == pytest.approx(440.0, abs=5.0)
        assert np.max(np.abs(samples)) <= 1.0
    resampled, r16 = load_audio(path, sample_rate=16000)
    assert r16 == 16000 and abs(len(resampled) - len(samples) * 16000 / rate) <= 2


def test_content_decides_not_the_extension(make_tone, tmp_path: Path) -> None:
    signal = make_tone(0.2, 16000)
    flac_as_wav = tmp_path / "really_flac.wav"
    sf.write(flac_as_wav, signal, 16000, format="FLAC", subtype="PCM_16")
    wav_as_mp3 = tmp_path / "really_wav.mp3"
    sf.write(wav_as_mp3, signal, 16000, format="WAV", subtype="PCM_16")
    for path in (flac_as_wav, wav_as_mp3):
        samples, _ = load_audio(path)
        assert np.max(np.abs(samples - signal)) <= 1.0 / 2**15


def test_float_peaks_above_one_are_scaled(tmp_path: Path, make_tone, caplog) -> None:
    signal = make_tone(0.2, 8000, amplitude=4.0)
    path = tmp_path / "hot.wav"
    sf.write(path, signal, 8000, subtype="FLOAT")
    samples, _ = load_audio(path)
    assert np.max(np.abs(samples)) == pytest.approx(1.0)
    np.testing.assert_allclose(samples, signal / np.max(np.abs(signal)), atol=1e-6)
    assert "scaled into [-1, 1]" in caplog.text


# -- headerless PCM and standard input -------------------------------------------------------------


def test_raw_pcm_with_explicit_format(tmp_path: Path) -> None:
    ints = np.array([0, 1000, -32768, 32767, -5, 12], dtype="<i2")
    path = tmp_path / "x.raw"
    path.write_bytes(ints.tobytes())
    samples, rate = load_audio(path, raw_format="s16le:16000")
    assert rate == 16000
    np.testing.assert_array_equal(samples, ints.astype(np.float32) / 32768)
    big = tmp_path / "x.be"
    big.write_bytes(ints.astype(">i2").tobytes())
    np.testing.assert_array_equal(load_audio(big, raw_format=RawFormat("s16be", 16000))[0], samples)
    # Interleaved stereo: mean of the channels, or one of them.
    stereo = tmp_path / "s.raw"
    stereo.write_bytes(np.array([[0.5, -0.5], [0.25, 0.75]], dtype="<f4").tobytes())
    np.testing.assert_allclose(load_audio(stereo, raw_format="f32le:8000:2")[0], [0.0, 0.5])
    np.testing.assert_allclose(load_audio(stereo, raw_format="f32le:8000:2", channel=1)[0], [-0.5, 0.75])
    assert audio_duration(path, raw_format="s16le:16000") == pytest.approx(6 / 16000)


@pytest.mark.parametrize("spec", ["s16le", "s16le:abc", "s17le:16000", "s16le:0", "s16le:16000:2:1"])
def test_raw_format_errors(spec: str) -> None:
    with pytest.raises(AudioError, match="raw format"):
        RawFormat.parse(spec)


def test_stdin(monkeypatch, make_tone) -> None:
    signal = make_tone(0.1, 8000)
    buffer = io.BytesIO()
    sf.write(buffer, signal, 8000, format="WAV", subtype="FLOAT")
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(buffer.getvalue())))
    samples, rate = load_audio("-")
    assert rate == 8000
    np.testing.assert_array_equal(samples, signal)
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(np.int16([1, 2]).tobytes())))
    samples, _ = load_audio("-", raw_format="s16le:8000")
    np.testing.assert_array_equal(samples, np.float32([1, 2]) / 32768)
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(b"")))
    with pytest.raises(AudioError, match="<stdin>: no data"):
        load_audio("-")


# -- ffmpeg fallback ----------------------------------------------------------------------------------

M4A_HEAD = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(200)

FAKE_FFMPEG = """#!{python}
# Stand-in for ffmpeg: records its arguments, then writes a 0.25 s 440 Hz tone as float WAV.
import sys, numpy as np, soundfile as sf
args = sys.argv[1:]
open({log!r}, "w").write(" ".join(args))
if {fail}:
    sys.stderr.write("[mov,mp4] moov atom not found\\n{{src}}: Invalid data found when processing input\\n".format(src=args[args.index("-i") + 1]))
    sys.exit(1)
t = np.arange(4000) / 16000
sf.write(args[-1], (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="FLOAT")
"""


def _fake_ffmpeg(tmp_path: Path, monkeypatch, fail: bool = False) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "ffmpeg.args"
    script = bin_dir / "ffmpeg"
    script.write_text(FAKE_FFMPEG.format(python=sys.executable, log=str(log), fail=fail))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def test_other_containers_go_through_ffmpeg(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "voice.m4a"
    path.write_bytes(M4A_HEAD)
    log = _fake_ffmpeg(tmp_path, monkeypatch)
    samples, rate = load_audio(path, sample_rate=8000)
    assert rate == 8000 and len(samples) == 2000
    assert _peak_hz(samples, 8000) == pytest.approx(440.0, abs=5.0)
    args = log.read_text().split()
    assert args[args.index("-i") + 1] == str(path)
    assert "pcm_f32le" in args and "-nostdin" in args
    blocks = list(read_blocks(path, 0.1, sample_rate=16000))
    assert sum(len(b.samples) for b in blocks) == 4000


def test_ffmpeg_failure_is_one_line_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "broken.webm"
    path.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(100))
    _fake_ffmpeg(tmp_path, monkeypatch, fail=True)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert str(path) in message and "WebM" in message and "Invalid data found" in message
    assert "\n" not in message


def test_without_ffmpeg_the_message_says_to_install_it(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "voice.m4a"
    path.write_bytes(M4A_HEAD)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot decode audio (an MP4/M4A container)")
    assert "install ffmpeg" in message


# -- long files, block by block --------------------------------------------------------------------


@pytest.mark.parametrize(("file_rate", "target"), [(8000, None), (8000, 16000), (16000, 8000)])
def test_blocks_cover_the_file_like_load_audio(tmp_path: Path, file_rate: int, target) -> None:
    rng = np.random.default_rng(0)
    signal = (rng.standard_normal(int(10.3 * file_rate)) * 0.1).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, signal, file_rate, subtype="FLOAT")
    whole, rate = load_audio(path, sample_rate=target)
    blocks = list(read_blocks(path, 2.0, 0.5, sample_rate=target))
    block, hop = 2 * rate, int(1.5 * rate)
    assert [b.start for b in blocks] == [i * hop for i in range(len(blocks))]
    assert all(len(b.samples) == block for b in blocks[:-1]) and 0 < len(blocks[-1].samples) <= block
    assert blocks[-1].start + len(blocks[-1].samples) == pytest.approx(len(whole), abs=2)
    assert blocks[1].start_seconds == pytest.approx(1.5)
    joined = np.concatenate([blocks[0].samples] + [b.samples[block - hop :] for b in blocks[1:]])
    n = min(len(joined), len(whole))
    # Streamed soxr equals one-shot soxr (no seams at block edges); without resampling, exactly.
    assert np.max(np.abs(joined[:n] - whole[:n])) <= (0.0 if target in (None, file_rate) else 1e-4)


def test_blocks_of_a_short_file_and_bad_arguments(tiny_wav: Path) -> None:
    blocks = list(read_blocks(tiny_wav, 10.0, 1.0))
    assert len(blocks) == 1 and len(blocks[0].samples) == 8000 and blocks[0].start == 0
    with pytest.raises(ValueError):
        list(read_blocks(tiny_wav, 1.0, 1.0))


def test_blocks_stop_at_nan(tmp_path: Path, make_tone) -> None:
    signal = make_tone(3.0, 8000)
    signal[20000] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, signal, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"first at 2\.500 s"):
        list(read_blocks(path, 1.0))


def test_one_hour_file_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    """A 1-hour recording: its duration comes from the header, and reading it in 30 s blocks
    never holds more than a few blocks (the whole file as float32 would be 115 MB)."""
    path = tmp_path / "hour.wav"
    rate, minute = 8000, 60 * 8000
    rng = np.random.default_rng(0)
    chunk = (rng.standard_normal(minute) * 3000).astype(np.int16)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as handle:
        for _ in range(60):
            handle.write(chunk)
    assert audio_duration(path) == pytest.approx(3600.0)
    tracemalloc.start()
    try:
        total = 0
        count = 0
        for block in read_blocks(path, 30.0):
            total += len(block.samples)
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 3600 * rate and count == 120
    assert peak < 20 * 2**20


# -- bad input ------------------------------------------------------------------------------------


def test_digital_silence_clipping_and_one_sample_are_read(tmp_path: Path) -> None:
    """Documented results: silence, clipped audio and a 1-sample file load as they are, and the
    features computed from them are finite."""
    from asr.config import FeatureConfig
    from asr.features import build_frontend

    cases = {
        "silence.wav": np.zeros(8000, dtype=np.int16),
        "clipped.wav": np.where(np.arange(8000) % 20 < 10, 32767, -32768).astype(np.int16),
        "one.wav": np.array([1234], dtype=np.int16),
    }
    for name, ints in cases.items():
        path = tmp_path / name
        sf.write(path, ints, 8000, subtype="PCM_16")
        samples, _ = load_audio(path)
        np.testing.assert_array_equal(samples, ints.astype(np.float32) / 32768)
        assert np.max(np.abs(samples)) <= 1.0
        for type_ in ("logmel", "fbank", "graves123"):
            feats, n = build_frontend(FeatureConfig(type=type_, sample_rate=8000, n_mels=23))(
                torch.from_numpy(samples))
            assert torch.isfinite(feats).all()
            if name == "one.wav":  # one centred frame for logmel; Kaldi: no frame fits
                assert n.item() == (1 if type_ == "logmel" else 0)


def test_truncated_header_and_truncated_data(tmp_path: Path, tiny_wav: Path) -> None:
    data = tiny_wav.read_bytes()
    header_cut = tmp_path / "header_cut.wav"
    header_cut.write_bytes(data[:30])
    with pytest.raises(AudioError) as info:
        load_audio(header_cut)
    assert str(header_cut) in str(info.value) and "cannot decode" in str(info.value)
    data_cut = tmp_path / "data_cut.wav"
    data_cut.write_bytes(data[: 44 + 2 * 3000])  # the header still says 8000 samples
    samples, _ = load_audio(data_cut)
    assert len(samples) == 3000  # what is there, as libsndfile returns it
    np.testing.assert_array_equal(samples, load_audio(tiny_wav)[0][:3000])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n", "HTML/XML page"),
        (b"  <html>\n<head><title>Error</title></head></html>", "HTML/XML page"),
        (b"utt1 hello world\nutt2 more text\n", "a text file, not audio"),
    ],
)
def test_text_and_html_named_wav(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "download.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value)


def test_channel_out_of_range_names_the_file(tmp_path: Path, tiny_wav: Path) -> None:
    with pytest.raises(AudioError, match="channel 1 requested but the audio has 1") as info:
        load_audio(tiny_wav, channel=1)
    assert str(tiny_wav) in str(info.value)
    assert len(load_audio(tiny_wav, channel=0)[0]) == 8000


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (tools/install_ffmpeg.sh)")
@pytest.mark.parametrize(("suffix", "codec"), [("m4a", "aac"), ("webm", "libopus"), ("mkv", "flac")])
def test_real_ffmpeg_containers(tmp_path: Path, make_tone, suffix: str, codec: str) -> None:
    """With the real ffmpeg: AAC in m4a, Opus in webm, FLAC in Matroska decode to the tone."""
    source = tmp_path / "tone.wav"
    sf.write(source, make_tone(1.0, 16000, 440.0, 0.5), 16000, subtype="PCM_16")
    target = tmp_path / f"tone.{suffix}"
    done = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(source), "-c:a", codec,
                           str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this ffmpeg cannot encode {codec}: {done.stderr.strip()[:200]}")
    samples, rate = load_audio(target, sample_rate=16000)
    assert rate == 16000 and abs(len(samples) - 16000) <= 0.1 * 16000
    assert _peak_hz(samples, 16000) == pytest.approx(440.0, abs=5.0)
    corrupt = tmp_path / f"corrupt.{suffix}"
    corrupt.write_bytes(target.read_bytes()[:60])
    with pytest.raises(AudioError) as info:
        load_audio(corrupt)
    assert str(info.value).startswith(f"{corrupt}: cannot decode audio") and "ffmpeg:" in str(info.value)
