"""``asr benchmark loader``: tiny corpora fabricated as FLAC, one subprocess per run (lazy with
a worker, in RAM), one table with the peak PSS of each run's process tree, the loop's data
wait and updates/s, and the two target lines; the corpus is cached and reused."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from asr.benchmarks import loader
from asr.cli import main as asr_main

TINY = ["--sizes", "20,40", "--updates", "3", "--workers", "1", "--threads", "1",
        "--max-frames", "1000", "--set", "model.hidden_size=16", "--set", "model.num_layers=1"]


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").is_file(), reason="needs /proc smaps_rollup")
def test_benchmark_prints_one_table_of_both_paths(tmp_path: Path, capsys) -> None:
    out = tmp_path / "table.md"
    code = asr_main.main(["benchmark", "loader", *TINY, "--work-dir", str(tmp_path / "work"),
                          "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "smaps_rollup Pss" in text and "3 updates per run: 1 x 16 biLSTM" in text
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| path | utterances | hours | workers | peak PSS (MB) |")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("lazy", "20", "1"), ("in-RAM", "20", "0"), ("lazy", "40", "1"), ("in-RAM", "40", "0")]
    for row in rows:
        hours, peak, main, wait, speed, updates = (float(row[i].replace(",", "")) for i in (2, 4, 5, 6, 7, 8))
        assert hours > 0 and wait >= 0 and speed > 0 and updates == 3
        assert 50 < main <= peak < 100_000  # a Python process with torch, in MB
    lazy_peaks = [float(r[4].replace(",", "")) for r in rows if r[0] == "lazy"]
    assert re.search(r"40 − 20 peak memory \(lazy\): [+-][\d,]+ MB \(target ≤ 100 MB", text)
    assert len(re.findall(r"lazy/in-RAM updates/s at \d+: \d+\.\d\d×", text)) == 2
    assert lazy_peaks[0] > 0
    assert out.read_text().strip() == text[text.index("# Loader benchmark"):].strip()
    # The corpus: FLAC files with a Kaldi data dir and utt2dur, the smaller reusing the files.
    work = tmp_path / "work"
    files = sorted((work / "audio-seed0").glob("*.flac"))
    assert len(files) == 40
    small = (work / "data-seed0-20" / "wav.scp").read_text().splitlines()
    assert len(small) == 20 and all(line.split()[1].endswith(".flac") for line in small)
    assert len((work / "data-seed0-40" / "utt2dur").read_text().splitlines()) == 40
    assert not any(p.name.startswith("runs-") for p in work.iterdir())  # run dirs removed


def test_corpus_is_deterministic_and_reused(tmp_path: Path) -> None:
    import soundfile as sf

    audio = loader._ensure_audio(tmp_path, 3, 5)
    first = {p.name: p.stat().st_mtime_ns for p in audio.glob("*.flac")}
    assert loader._ensure_audio(tmp_path, 3, 4) == audio  # enough already: nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in audio.glob("*.flac")} == first
    data, hours = loader.make_corpus(tmp_path, 3, 5, audio)
    seconds = [float(line.split()[1]) for line in (data / "utt2dur").read_text().splitlines()]
    assert all(1.0 <= s <= 4.0 for s in seconds) and hours == pytest.approx(sum(seconds) / 3600)
    samples, rate = sf.read(audio / "000002.flac")
    assert rate == 16000 and samples.ndim == 1 and 0 < abs(samples).max() < 1
    again = loader._audio(3, 2, len(samples))
    assert abs(again - samples).max() < 1e-4  # 16-bit FLAC of the same seeded signal
    texts = (data / "text").read_text().splitlines()
    assert all(set(line.split(" ", 1)[1]) <= set(loader.CHARSET + " ") for line in texts)


def test_memory_of_a_process_tree_counts_the_children() -> None:
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(5)']); "
                              "time.sleep(5)"])
    try:
        deadline = time.time() + 5
        while len(loader.descendants(child.pid)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        pids = loader.descendants(child.pid)
        assert pids[0] == child.pid and len(pids) == 2
        assert loader.process_kb(child.pid, use_pss=True) > 0
        assert loader.process_kb(child.pid, use_pss=False) > 0
        assert loader.process_kb(2**22 + 12345, use_pss=True) == 0  # no such process
        sampler = loader.MemorySampler(child.pid, use_pss=True)
        sampler.sample()
        assert sampler.peak_kb > sampler.peak_main_kb > 0 and sampler.peak_processes == 2
    finally:
        for pid in loader.descendants(child.pid)[1:]:
            os.kill(pid, 9)
        child.kill()
        child.wait()
