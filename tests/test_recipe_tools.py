"""tools/parse_options.sh and tools/run_local.sh, run through bash."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
PARSE_OPTIONS = TOOLS / "parse_options.sh"
RUN_LOCAL = TOOLS / "run_local.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not available")

# A recipe prologue: defaults, then the option parser, then print what it set and what is left.
SCRIPT = f"""
stage=0
nj=4
corpus_dir=/data/fsdd
use_gpu=false
help_message="Usage: run.sh [options] <out-dir>"
. {PARSE_OPTIONS}
echo "stage=$stage nj=$nj corpus_dir=$corpus_dir use_gpu=$use_gpu"
echo "rest=$#:$*"
"""


def parse(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", SCRIPT, "run.sh", *args], capture_output=True, text=True, timeout=30, cwd=cwd
    )


def test_defaults_unchanged() -> None:
    result = parse()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stage=0 nj=4 corpus_dir=/data/fsdd use_gpu=false",
        "rest=0:",
    ]


def test_sets_variables_both_forms() -> None:
    result = parse(
        "--stage",
        "3",
        "--nj=8",
        "--corpus-dir",
        "/tmp/my corpus",
        "--use-gpu",
        "true",
        "exp/out",
        "x",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stage=3 nj=8 corpus_dir=/tmp/my corpus use_gpu=true",
        "rest=2:exp/out x",
    ]


def test_equals_form_keeps_later_equals_signs() -> None:
    result = parse("--corpus-dir=a=b", "--stage=")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "stage= nj=4 corpus_dir=a=b use_gpu=false"


def test_unknown_option_exits_1() -> None:
    result = parse("--stgae", "3")
    assert result.returncode == 1
    assert "invalid option --stgae" in result.stderr
    assert result.stdout == ""
    result = parse("--nope=1")
    assert result.returncode == 1 and "invalid option --nope" in result.stderr


def test_missing_value_and_boolean_check() -> None:
    result = parse("--nj")
    assert result.returncode == 1 and "option --nj needs a value" in result.stderr
    result = parse("--use-gpu", "yes")
    assert result.returncode == 1 and "--use-gpu expects true or false, got 'yes'" in result.stderr


def test_help_lists_options() -> None:
    result = parse("--help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Usage: run.sh [options] <out-dir>"
    assert "  --stage 0" in lines and "  --nj 4" in lines
    assert "  --corpus-dir /data/fsdd" in lines and "  --use-gpu false" in lines
    assert not any(line.startswith("stage=") for line in lines)  # exited before the script body
    assert parse("-h").returncode == 0


def test_config_file(tmp_path: Path) -> None:
    config = tmp_path / "opts.conf"
    config.write_text("nj=2\nstage=5\n")
    result = parse("--config", str(config), "--stage", "7")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("stage=7 nj=2 ")
    result = parse("--config", str(tmp_path / "missing.conf"))
    assert result.returncode == 1 and "missing.conf' not found" in result.stderr


def run_local(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(RUN_LOCAL), *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_run_local_job_array(tmp_path: Path) -> None:
    result = run_local(
        "JOB=1:3",
        "log/task.JOB.log",
        "bash",
        "-c",
        "echo job JOB of 3; echo err JOB >&2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    logs = sorted((tmp_path / "log").iterdir())
    assert [p.name for p in logs] == ["task.1.log", "task.2.log", "task.3.log"]
    for job, log in enumerate(logs, 1):
        lines = log.read_text().splitlines()
        assert lines[0] == f"# bash -c echo job {job} of 3; echo err {job} >&2"
        assert lines[1].startswith("# Started at ")
        assert f"job {job} of 3" in lines and f"err {job}" in lines
        assert lines[-1].startswith("# Ended (code 0) at ")


def test_run_local_failure_names_log(tmp_path: Path) -> None:
    result = run_local("JOB=1:3", "log/x.JOB.log", "bash", "-c", "[ JOB != 2 ]", cwd=tmp_path)
    assert result.returncode == 1
    assert "1 / 3 job(s) failed" in result.stderr
    assert "log/x.2.log" in result.stderr and "x.1.log" not in result.stderr
    assert (
        (tmp_path / "log" / "x.2.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")
    )
    assert (
        (tmp_path / "log" / "x.3.log").read_text().splitlines()[-1].startswith("# Ended (code 0)")
    )


def test_run_local_single_job_and_options(tmp_path: Path) -> None:
    (tmp_path / "my dir").mkdir()
    result = run_local(
        "--max-jobs-run",
        "1",
        "--mem",
        "4G",
        "--num-threads",
        "2",
        "one.log",
        "touch",
        "my dir/file",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "my dir" / "file").exists()  # arguments with spaces stay whole
    assert (tmp_path / "one.log").read_text().splitlines()[-1].startswith("# Ended (code 0)")
    result = run_local("JOB=2", "j.JOB.log", "echo", "JOB", cwd=tmp_path)
    assert result.returncode == 0 and "2" in (tmp_path / "j.2.log").read_text().splitlines()


def test_run_local_usage_errors(tmp_path: Path) -> None:
    assert run_local("--bogus", "1", "a.log", "true", cwd=tmp_path).returncode == 2
    assert run_local("a.log", cwd=tmp_path).returncode == 2
