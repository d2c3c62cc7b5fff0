"""``asr benchmark all`` (and tools/gpu_report.sh): the report's CPU mode end to end with
--quick, and its pieces (log parsing, data subsets, the step runner, the lanes)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from asr.benchmarks.suite.digits import parse_train_log, subset_data_dir
from asr.benchmarks.suite.lanes import run_in_lanes
from asr.benchmarks.suite.runner import error_line, run_command
from asr.cli.benchmark import kinds
from asr.cli.main import main as asr_main
from asr.model.lstm import cpu_runs_bf16_lstm

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = ["--tests", str(ROOT / "tests"),
            "--train-config", str(ROOT / "recipes" / "digits" / "conf" / "gpu.yaml")]
GPU_ROWS = {"gpu-tests", "features", "train", "digits-train", "decode", "transcribe"}


def test_quick_cpu_report(fsdd_recordings: Path, tmp_path: Path, capsys) -> None:
    """CPU rows carry real figures; every GPU row is listed as skipped, with its reason."""
    out = tmp_path / "report"
    started = time.monotonic()
    code = asr_main(["benchmark", "all", "--device", "cpu", "--quick", "--out", str(out),
                     "--fsdd", str(fsdd_recordings.parent), *CHECKOUT])
    elapsed = time.monotonic() - started
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "gpu_report.json").read_text())
    md = (out / "gpu_report.md").read_text()
    assert report["machine"]["cpu"] and report["machine"]["commit"] and report["machine"]["date"]
    steps = {(s["name"], s["device"]): s for s in report["steps"]}
    gpu = {name for (name, device), s in steps.items() if device == "cuda"}
    assert gpu == GPU_ROWS
    for name in GPU_ROWS:
        row = steps[(name, "cuda")]
        assert row["status"] == "skipped" and "--device cpu" in row["reason"]
        assert f"| {name} | cuda | skipped |" in md
    assert {s["name"] for s in report["skipped"]} == GPU_ROWS
    cpu = {name: s for (name, device), s in steps.items() if device == "cpu"}
    assert set(cpu) == GPU_ROWS - {"gpu-tests"} | {"data"}
    for name, row in cpu.items():
        assert row["status"] == "ok", (name, row["reason"])
        assert row["seconds"] > 0 and (name == "data" or row["summary"])
    figures = {name: row["figures"] for name, row in cpu.items()}
    cpu_features = [r for r in figures["features"]["rows"] if r["device"] == "CPU"]
    assert all(r["audio_s_per_s"] > 0 for r in cpu_features)
    # bf16 rows exist only where oneDNN has a bf16 LSTM (not under ONEDNN_MAX_CPU_ISA=AVX2).
    expected = {"fp32", "bf16"} if cpu_runs_bf16_lstm() else {"fp32"}
    assert {r["precision"] for r in figures["train"]["rows"]} == expected
    assert all(r["frames_per_s"] > 0 for r in figures["train"]["rows"])
    assert figures["digits-train"]["seconds_per_epoch"] > 0
    assert "dev_rate" in figures["digits-train"]["epochs"][-1]
    searched = [r for r in figures["decode"]["rows"] if r["device"] == "cpu"]
    assert {r["decoder"] for r in searched} >= {"greedy", "beam (ours)"}
    assert all(r["utts_per_s"] > 0 and r["wer"] >= 0 for r in searched)
    transcribed = [r for r in figures["transcribe"]["rows"] if r["device"] == "cpu"]
    assert [r["input"] for r in transcribed] == ["files", "long"]
    assert all(r["rtf"] > 0 for r in transcribed)
    assert "## features (cpu)" in md and "| asr LogMel, batched | CPU | 1 |" in md
    assert (out / "gpu_report.log").stat().st_size > 0
    assert elapsed < 120  # about 40 s on 2 busy cores; a hang would show here


def test_all_is_a_benchmark_kind_and_the_wrapper_passes_options() -> None:
    assert "all" in kinds() and "suite" not in kinds()
    proc = subprocess.run(["bash", str(ROOT / "tools" / "gpu_report.sh"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--device" in proc.stdout


def test_cuda_requested_without_cuda_fails_each_gpu_row(fsdd_recordings: Path, tmp_path: Path,
                                                        capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is usable here")
    out = tmp_path / "report"
    code = asr_main(["benchmark", "all", "--device", "cuda", "--quick", "--steps", "decode",
                     "--out", str(out), "--fsdd", str(fsdd_recordings.parent)])
    assert code == 1
    steps = json.loads((out / "gpu_report.json").read_text())["steps"]
    assert [(s["name"], s["device"], s["status"]) for s in steps] == [
        ("data", "cpu", "skipped"), ("decode", "cuda", "failed")]
    assert "CUDA is not usable" in steps[1]["reason"]


def test_parse_train_log() -> None:
    log = "\n".join([
        "2026-12-03 07:26:28 INFO asr.train: model: 296210 parameters",
        "2026-12-03 07:26:55 INFO asr.train: epoch 1: train loss 60.8996, dev loss 54.0199, dev "
        "WER 100.00%, dev CER 100.00%, lr 1.98e-03, 54107 frames/s, 27.5 s (best), ETA 5m03s to epoch 2",
        "2026-12-03 07:27:21 INFO asr.train: epoch 2: train loss 34.2680, dev loss 25.8513, dev "
        "WER 98.73%, dev CER 45.62%, lr 2.80e-03, 53052 frames/s, 25.3 s, ETA 0m00s to epoch 2",
        "2026-12-03 07:27:22 INFO asr.train: exported model (epoch 2, dev loss 25.8513, dev WER "
        "98.73%) to exp/final",
    ])
    parsed = parse_train_log(log)
    assert parsed["epochs"] == [
        {"epoch": 1, "dev_metric": "WER", "dev_rate": 100.0, "seconds": 27.5, "frames_per_s": 54107},
        {"epoch": 2, "dev_metric": "WER", "dev_rate": 98.73, "seconds": 25.3, "frames_per_s": 53052},
    ]
    assert parsed["seconds_per_epoch"] == pytest.approx(26.4)
    assert parsed["exported"].startswith("epoch 2, dev loss 25.8513")
    assert parse_train_log("nothing here") == {"epochs": []}


def test_subset_data_dir(tmp_path: Path) -> None:
    ids = [f"s{i % 2}-u{i:02d}" for i in range(10)]
    (tmp_path / "wav.scp").write_text("".join(f"{u} /a/{u}.wav\n" for u in ids))
    (tmp_path / "text").write_text("".join(f"{u} one two\n" for u in ids))
    (tmp_path / "utt2spk").write_text("".join(f"{u} {u[:2]}\n" for u in ids))
    (tmp_path / "split2" / "1").mkdir(parents=True)
    (tmp_path / "split2" / "1" / "wav.scp").write_text("x\n")
    assert subset_data_dir(tmp_path, 4) == 4
    kept = [line.split()[0] for line in (tmp_path / "wav.scp").read_text().splitlines()]
    assert len(kept) == 4 and kept == [u for u in ids if u in kept]  # file order kept
    assert [line.split()[0] for line in (tmp_path / "text").read_text().splitlines()] == kept
    spk2utt = dict(line.split(maxsplit=1) for line in (tmp_path / "spk2utt").read_text().splitlines())
    assert sorted(u for utts in spk2utt.values() for u in utts.split()) == sorted(kept)
    assert not (tmp_path / "split2").exists()
    assert subset_data_dir(tmp_path, 0) == 4


def test_run_command_ok_failure_and_timeout(tmp_path: Path) -> None:
    ok = run_command([sys.executable, "-c", "print('| a | b |')"], 60, tmp_path / "ok", tmp_path)
    assert ok.status == "ok" and ok.stdout == "| a | b |\n" and ok.error is None
    bad = run_command([sys.executable, "-c", "import sys; print('INFO working', file=sys.stderr);"
                       "sys.exit('asr x: error: no such data dir')"], 60, tmp_path / "bad", tmp_path)
    assert bad.status == "failed" and bad.error == "asr x: error: no such data dir"
    # The budget ends the whole process group: the child's own child goes too.
    marker = tmp_path / "grandchild-ran"
    grandchild = f"import time; time.sleep(3); open({str(marker)!r}, 'w')"
    script = tmp_path / "slow.py"
    script.write_text(f"import subprocess, sys, time\n"
                      f"subprocess.Popen([sys.executable, '-c', {grandchild!r}])\ntime.sleep(30)\n")
    started = time.monotonic()
    slow = run_command([sys.executable, str(script)], 1, tmp_path / "slow", tmp_path)
    assert slow.status == "timeout" and "budget of 1 s" in slow.error
    assert time.monotonic() - started < 20
    time.sleep(3.5)
    assert not marker.exists()
    missing = run_command(["/no/such/program"], 5, tmp_path / "missing", tmp_path)
    assert missing.status == "failed" and "cannot start" in missing.error


def test_error_line_prefers_the_line_that_names_the_error() -> None:
    trace = "Traceback (most recent call last):\n  File \"x\", line 1\nValueError: bad beam\n"
    assert error_line(trace) == "ValueError: bad beam"
    assert error_line("INFO a\nINFO b\n") == "INFO b"
    assert error_line("", "", 3) == "exit code 3"


def test_lanes_respect_dependencies_and_order() -> None:
    # 0 and 1 are independent; 2 needs 0; 3 needs 1 and 2.
    deps = {0: set(), 1: set(), 2: {0}, 3: {1, 2}}
    started: list[int] = []
    lock = threading.Lock()
    done_order: list[int] = []

    def work(job: int) -> int:
        with lock:
            assert deps[job] <= set(done_order)
            started.append(job)
        time.sleep(0.05 if job else 0.15)
        return job * 10

    run_in_lanes([0, 1, 2, 3], 2, lambda i: deps[i], work,
                 lambda i, result: (done_order.append(i), result == i * 10))
    assert sorted(done_order) == [0, 1, 2, 3] and done_order[-1] == 3
    assert started[:2] == [0, 1]
    with pytest.raises(ValueError, match="never run"):
        run_in_lanes([0], 1, lambda i: {5}, work, lambda i, r: None)
