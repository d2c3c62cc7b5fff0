"""transcribe under load: 1,000 files in one call, and long recordings (10 minutes; 3 hours
with ``-m slow``), with flat memory and no leaked file descriptors."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from transcribe_utils import make_model_dir, one_thread  # noqa: F401 - fixture

import asr.inference
from asr.cli.transcribe import main
from asr.inference import load_model

RATE = 8000
pytestmark = pytest.mark.usefixtures("one_thread")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def sample_rss(work: Callable[[], object], every: float = 0.02) -> tuple[object, list[float]]:
    """Run ``work()`` while a thread records this process's resident memory (MB)."""
    samples: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            samples.append(rss_mb())
            time.sleep(every)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        result = work()
    finally:
        stop.set()
        thread.join()
    samples.append(rss_mb())
    return result, samples


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("model") / "tiny")


def test_thousand_files_in_one_call(model_dir: Path, fsdd_recordings: Path, tmp_path: Path,
                                    capsys) -> None:
    """1,000 real recordings in one ``transcribe`` call: every output written, memory flat
    over the run (second half within 40 MB of the first), no file descriptor left open."""
    files = sorted(fsdd_recordings.glob("*.wav"))[:1000]
    assert len(files) == 1000
    out_dir = tmp_path / "out"
    argv = ["--model", str(model_dir), "--device", "cpu", "--batch-size", "16", "-o",
            str(out_dir), *map(str, files)]
    main(argv[:6] + [str(files[0])])  # warm up: imports, thread pools, allocator
    capsys.readouterr()
    fds_before = open_fds()
    code, samples = sample_rss(lambda: main(argv))
    fds_after = open_fds()
    assert code == 0, capsys.readouterr().err
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == sorted(f"{f.stem}.txt" for f in files)
    assert all((out_dir / name).stat().st_size > 0 for name in written)  # a line each
    assert fds_after == fds_before
    half = len(samples) // 2
    assert len(samples) >= 10
    assert max(samples[half:]) <= max(samples[:half]) + 40, (max(samples[:half]), max(samples[half:]))


def tiled_recording(path: Path, source: Path, seconds: float) -> float:
    """Write ``seconds`` of ``source`` repeated (with 0.4 s pauses) to ``path`` block by block,
    never holding more than one copy in memory; return the duration written."""
    signal, rate = sf.read(source, dtype="int16")
    tile = np.concatenate([signal, np.zeros(int(0.4 * rate), dtype=np.int16)])
    total = int(seconds * rate)
    written = 0
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as handle:
        while written < total:
            part = tile[: total - written]
            handle.write(part)
            written += len(part)
    return written / rate


def _long_run(model_dir: Path, fsdd_recordings: Path, tmp_path: Path, seconds: float,
              monkeypatch) -> tuple[asr.transcript.Result, list[float], float]:
    path = tmp_path / "long.wav"
    duration = tiled_recording(path, sorted(fsdd_recordings.glob("3_theo_*.wav"))[0], seconds)
    recognizer = load_model(str(model_dir), device="cpu")

    def whole_file(*args, **kwargs):
        raise AssertionError("a long file must be read block by block, never whole")

    monkeypatch.setattr(asr.inference, "load_audio", whole_file)
    baseline = rss_mb()
    fds = open_fds()
    result, samples = sample_rss(lambda: recognizer.transcribe(path, batch_size=4), every=0.1)
    assert open_fds() == fds
    assert result.duration == pytest.approx(duration, abs=1e-3)
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and result.words and result.words[-1].end <= duration + 0.05
    assert result.segments[-1].end <= duration + 0.05
    assert " ".join(s.text for s in result.segments) == result.text
    return result, samples, baseline


def test_long_recording_ten_minutes(model_dir: Path, fsdd_recordings: Path, tmp_path: Path,
                                    monkeypatch) -> None:
    """10 minutes, streamed in 30 s chunks: the transcript covers the whole recording and
    resident memory grows by under 150 MB."""
    result, samples, baseline = _long_run(model_dir, fsdd_recordings, tmp_path, 600.0, monkeypatch)
    assert result.words[-1].start > 590.0  # the end of the recording was transcribed
    assert max(samples) - baseline < 150, (baseline, max(samples))


@pytest.mark.slow
def test_long_recording_three_hours(model_dir: Path, fsdd_recordings: Path, tmp_path: Path,
                                    monkeypatch) -> None:
    """3 hours (its samples alone would take 345 MB as float32): memory grows by under 250
    MB, and the last hour takes no more than the first 20 minutes did."""
    result, samples, baseline = _long_run(model_dir, fsdd_recordings, tmp_path, 3 * 3600.0,
                                          monkeypatch)
    assert result.words[-1].start > 3 * 3600.0 - 10
    assert max(samples) - baseline < 250, (baseline, max(samples))
    third = len(samples) // 9
    assert max(samples[-3 * third:]) <= max(samples[:third * 2]) + 40
