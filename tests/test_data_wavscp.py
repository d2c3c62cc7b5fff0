"""Reading the audio a wav.scp entry names: paths, ark offsets, opt-in commands, Kaldi's sox
speed lines (in process), and segments, through training and decoding."""

from __future__ import annotations

import shutil
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from asr.audio import speed_perturb
from asr.data.datadir import read_data_dir, write_data_dir
from asr.data.utterance import RecordingSegment, Utterance
from asr.data.wav_audio import (
    cut_segment,
    entry_duration,
    load_utterance_audio,
    load_wav_entry,
    run_command,
)
from asr.errors import AudioError, DataDirError

RATE = 8000


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(round(seconds * RATE))) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _int16(samples: np.ndarray) -> np.ndarray:
    return np.round(samples * 32767).astype(np.int16)


@pytest.fixture
def recording(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """1 s at 300 Hz then 1 s at 1200 Hz, 16-bit, 8 kHz; returns the path and the samples
    exactly as a 16-bit reader sees them."""
    samples = np.concatenate([_tone(1.0, 300), _tone(1.0, 1200)])
    path = tmp_path / "rec.wav"
    sf.write(path, _int16(samples), RATE, subtype="PCM_16")
    return path, _int16(samples).astype(np.float32) / 32768


def test_plain_path_and_relative_path(recording, tmp_path: Path, monkeypatch) -> None:
    path, expected = recording
    samples, rate = load_wav_entry(str(path))
    assert rate == RATE and np.array_equal(samples, expected)
    monkeypatch.chdir(tmp_path)
    assert np.array_equal(load_wav_entry("rec.wav")[0], expected)
    assert entry_duration("rec.wav") == pytest.approx(2.0)


def test_ark_offset_entries(tmp_path: Path) -> None:
    first, second = _int16(_tone(0.3, 440)), _int16(_tone(0.5, 880))
    stereo = np.stack([second, second // 2], axis=1)
    kaldiio.save_ark(str(tmp_path / "wav.ark"), {"u1": (RATE, first), "u2": (RATE, stereo)},
                     scp=str(tmp_path / "raw.scp"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text((tmp_path / "raw.scp").read_text())
    utts = read_data_dir(data, require_text=False).utterances
    assert [u.wav.rsplit(":", 1)[0] for u in utts] == [str(tmp_path / "wav.ark")] * 2
    a = load_utterance_audio(utts[0])
    assert np.allclose(a, first / 32768)
    b = load_utterance_audio(utts[1])
    assert np.allclose(b, (second / 32768 + (second // 2) / 32768) / 2)  # mixed to mono
    resampled = load_utterance_audio(utts[0], 16000)
    assert abs(len(resampled) - 2 * len(first)) <= 1
    assert entry_duration(utts[1].wav) == pytest.approx(0.5)
    with pytest.raises(AudioError, match="no such file"):
        load_wav_entry(str(tmp_path / "missing.ark:2"))


def test_commands_run_without_a_shell_when_they_can(recording, monkeypatch) -> None:
    path, expected = recording
    samples, _ = load_wav_entry(f"cat {path} |")
    assert np.array_equal(samples, expected)
    samples, _ = load_wav_entry(f"cat {path} | cat |")  # a real pipeline: through sh -c
    assert np.array_equal(samples, expected)
    import asr.data.wav_audio as wav_audio

    seen: list[list[str]] = []
    real_run = wav_audio.subprocess.run

    def spy(argv, **kwargs):
        seen.append(argv)
        return real_run(argv, **kwargs)

    monkeypatch.setattr(wav_audio.subprocess, "run", spy)
    run_command(f"cat '{path}'")
    run_command("echo $HOME; true")
    assert seen == [["cat", str(path)], ["sh", "-c", "echo $HOME; true"]]


def test_failing_command_names_it(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"'cat /no/such.wav \|' failed with exit code 1: .*"):
        load_wav_entry("cat /no/such.wav |")
    with pytest.raises(AudioError, match=r"'echo not audio \|': "):
        load_wav_entry("echo not audio |")


def test_kaldi_speed_lines_are_applied_in_process(recording, tmp_path: Path, monkeypatch):
    path, expected = recording
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no sox, no sh needed
    monkeypatch.delenv("ASR_ALLOW_PIPES", raising=False)
    data = tmp_path / "sp"
    data.mkdir()
    (data / "wav.scp").write_text(f"sp0.9-r sox -t wav {path} -t wav - speed 0.9 |\n")
    (utt,) = read_data_dir(data, require_text=False).utterances
    samples = load_utterance_audio(utt)
    assert np.array_equal(samples, speed_perturb(expected, 0.9))
    assert abs(len(samples) - len(expected) / 0.9) <= 2
    assert entry_duration(utt.wav) == pytest.approx(2.0 / 0.9)


def test_speed_over_a_command_runs_the_command(recording, monkeypatch) -> None:
    path, expected = recording
    samples, _ = load_wav_entry(f"cat {path} | sox -t wav - -t wav - speed 1.1 |")
    assert np.array_equal(samples, speed_perturb(expected, 1.1))
    assert entry_duration(f"cat {path} | sox -t wav - -t wav - speed 1.1 |") is None
    assert entry_duration(f"cat {path} | sox -t wav - -t wav - speed 1.1 |", True) == (
        pytest.approx(2.0 / 1.1, abs=1e-3)
    )


def test_segments_cut_the_recording(recording, tmp_path: Path) -> None:
    path, expected = recording
    utts = [
        Utterance("s-a", str(path), "low", "s", RecordingSegment("r", 0.0, 1.0)),
        Utterance("s-b", str(path), "high", "s", RecordingSegment("r", 1.0, -1)),
        Utterance("s-c", str(path), "over", "s", RecordingSegment("r", 1.5, 2.3)),  # 0.3 s past the end
    ]
    data = write_data_dir(tmp_path / "seg", utts)
    back = read_data_dir(data.path).utterances
    a, b, c = (load_utterance_audio(u) for u in back)
    assert np.array_equal(a, expected[:RATE]) and np.array_equal(b, expected[RATE:])
    assert np.array_equal(c, expected[int(1.5 * RATE):])
    dominant = [np.argmax(np.abs(np.fft.rfft(x))) * RATE / len(x) for x in (a, b)]
    assert dominant == pytest.approx([300, 1200], abs=2)
    assert len(load_utterance_audio(back[0], 16000)) == 2 * RATE
    with pytest.raises(AudioError, match=r"utterance 's-d': segment ends at 2.6 s, after the end"):
        load_utterance_audio(Utterance("s-d", str(path), "", "s", RecordingSegment("r", 1.0, 2.6)))
    with pytest.raises(AudioError, match="holds no audio"):
        cut_segment(expected, RATE, 2.2, 2.4, "x")


def test_pipe_refused_at_read_time_names_the_line(recording, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("ASR_ALLOW_PIPES", raising=False)
    path, _ = recording
    data = tmp_path / "p"
    data.mkdir()
    (data / "wav.scp").write_text(f"a {path}\nb cat {path} |\n")
    with pytest.raises(DataDirError, match=r"wav.scp:2: 'b' is read through a shell command"):
        read_data_dir(data, require_text=False)


# ---- segments through `asr train` and `asr decode`

TINY = [
    "features.sample_rate=8000",
    "features.n_mels=16",
    "model.num_layers=1",
    "model.hidden_size=8",
    "model.frame_stack=3",
    "train.epochs=1",
    "train.max_frames_per_batch=3000",
    "train.max_utts_per_batch=4",
    "train.early_stop_patience=0",
]


def test_segments_in_training_and_decoding(yesno_waves: Path, tmp_path: Path) -> None:
    """Train on segments cut from 4 yes/no recordings; decoding the segmented directory gives
    exactly what decoding the same segments saved as files gives."""
    from asr.cli import main as asr_main

    segmented, cut = [], []
    (tmp_path / "cut").mkdir()
    for wav in sorted(yesno_waves.glob("*.wav"))[:4]:
        samples, rate = sf.read(wav, dtype="int16")
        reco = f"global-{wav.stem}"
        half = len(samples) / rate / 2
        labels = ["YES" if x == "1" else "NO" for x in wav.stem.split("_")]
        for k, (start, end) in enumerate(((0.0, half), (half, 2 * half))):
            utt = f"{reco}-{k}"
            text = " ".join(labels[4 * k:4 * k + 4])
            segmented.append(Utterance(utt, str(wav), text, "global", RecordingSegment(reco, start, end)))
            piece = tmp_path / "cut" / f"{utt}.wav"
            sf.write(piece, samples[int(round(start * rate)):int(round(end * rate))], rate)
            cut.append(Utterance(utt, str(piece), text, "global"))
    write_data_dir(tmp_path / "seg", segmented)
    write_data_dir(tmp_path / "files", cut)
    args = ["train", "--train", str(tmp_path / "seg"), "--exp-dir", str(tmp_path / "exp"),
            "--no-progress"]
    for override in TINY:
        args += ["--set", override]
    assert asr_main.main(args) == 0
    model = str(tmp_path / "exp" / "final")
    for name in ("seg", "files"):
        code = asr_main.main(["decode", "--model", model, "--data", str(tmp_path / name),
                              "--out", str(tmp_path / f"dec_{name}"), "--device", "cpu"])
        assert code == 0
    hyps_seg = (tmp_path / "dec_seg" / "text").read_text()
    assert len(hyps_seg.splitlines()) == 8
    assert hyps_seg == (tmp_path / "dec_files" / "text").read_text()
    shutil.rmtree(tmp_path / "exp")
