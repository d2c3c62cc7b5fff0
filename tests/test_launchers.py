"""tools/run_local.sh and tools/run_slurm.sh: Kaldi's `$cmd [opts] JOB=1:N LOG command...`.

The Slurm launcher runs against fake sbatch/srun/squeue/sacct/scancel programs put first on
PATH: they record their arguments and run the job script locally (array tasks in the
background, as a cluster would), so submission, waiting and failure reporting are real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
RUN_LOCAL = TOOLS / "run_local.sh"
RUN_SLURM = TOOLS / "run_slurm.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not available")


def run_local(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(RUN_LOCAL), *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


# ---- local


def test_run_local_job_array(tmp_path: Path) -> None:
    result = run_local("JOB=1:3", "log/task.JOB.log", "bash", "-c",
                       "echo job JOB of 3; echo err JOB >&2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    logs = sorted((tmp_path / "log").iterdir())
    assert [p.name for p in logs] == ["task.1.log", "task.2.log", "task.3.log"]
    for job, log in enumerate(logs, 1):
        lines = log.read_text().splitlines()
        assert lines[0] == f'# bash -c "echo job {job} of 3; echo err {job} >&2"'
        assert lines[1].startswith("# Started at ")
        assert f"job {job} of 3" in lines and f"err {job}" in lines
        assert lines[-2].startswith("# Accounting: time=")
        assert lines[-1].startswith("# Ended (code 0) at ")


def test_run_local_escaped_pipes_and_redirections_as_in_run_pl(tmp_path: Path) -> None:
    """Kaldi recipes write `$cmd JOB=1:2 log a \\| b \\> out.JOB`: the shell sees the pipe."""
    result = run_local("JOB=1:2", "log/p.JOB.log", "echo", "hello JOB", "|", "tr", "a-z", "A-Z",
                       ">", "out.JOB", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.1").read_text() == "HELLO 1\n"
    assert (tmp_path / "out.2").read_text() == "HELLO 2\n"
    # A failure inside a pipeline is a failure (pipefail), as in Kaldi's launchers.
    result = run_local("log/f.log", "false", "|", "cat", cwd=tmp_path)
    assert result.returncode == 1


def test_run_local_failure_names_log(tmp_path: Path) -> None:
    result = run_local("JOB=1:3", "log/x.JOB.log", "bash", "-c", "[ JOB != 2 ]", cwd=tmp_path)
    assert result.returncode == 1
    assert "1 / 3 job(s) failed" in result.stderr
    assert "log/x.2.log" in result.stderr and "x.1.log" not in result.stderr
    assert (tmp_path / "log/x.2.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")
    assert (tmp_path / "log/x.3.log").read_text().splitlines()[-1].startswith("# Ended (code 0)")


def test_run_local_parallel_up_to_the_limit(tmp_path: Path) -> None:
    script = "date +%s.%N > start.JOB; sleep 1"
    start = time.monotonic()
    result = run_local("--max-jobs-run", "2", "JOB=1:4", "log/s.JOB.log", "bash", "-c", script,
                       cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    starts = sorted(float((tmp_path / f"start.{j}").read_text()) for j in range(1, 5))
    assert starts[1] - starts[0] < 0.9  # two at once...
    assert starts[2] - starts[0] >= 0.95  # ...and the third waits for a free slot
    assert 2.0 <= elapsed < 20


def test_run_local_single_job_and_options(tmp_path: Path) -> None:
    (tmp_path / "my dir").mkdir()
    result = run_local("--max-jobs-run", "1", "--mem", "4G", "--num-threads", "2", "--time",
                       "1:00:00", "one.log", "touch", "my dir/file", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "my dir" / "file").exists()  # arguments with spaces stay whole
    assert (tmp_path / "one.log").read_text().splitlines()[-1].startswith("# Ended (code 0)")
    result = run_local("JOB=2", "j.JOB.log", "echo", "JOB", cwd=tmp_path)
    assert result.returncode == 0 and "2" in (tmp_path / "j.2.log").read_text().splitlines()


def test_run_local_usage_errors(tmp_path: Path) -> None:
    assert run_local("--bogus", "1", "a.log", "true", cwd=tmp_path).returncode == 2
    assert run_local("a.log", cwd=tmp_path).returncode == 2
    result = run_local("JOB=1:2", "same.log", "true", cwd=tmp_path)
    assert result.returncode == 1 and "each job needs its own log" in result.stderr


def test_run_local_gpu_request_without_gpu(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}  # no nvidia-smi here
    (tmp_path / "nvidia-smi").write_text("#!/bin/sh\nexit 9\n")
    (tmp_path / "nvidia-smi").chmod(0o755)
    result = subprocess.run(["bash", str(RUN_LOCAL), "--gpu", "1", "g.log", "true"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 1 and "--gpu 1 requested but no GPU is visible" in result.stderr
    result = subprocess.run(["bash", str(RUN_LOCAL), "--gpu", "0", "g.log", "true"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr


# ---- Slurm, against fake Slurm programs

FAKE_SBATCH = r"""#!/usr/bin/env bash
# Fake sbatch: records its arguments, starts every array task in the background.
state=$FAKE_SLURM_STATE
printf '%s\n' "sbatch $*" >> "$state/calls"
array=""; out=""
for a in "$@"; do
  case "$a" in --array=*) array=${a#--array=} ;; --output=*) out=${a#--output=} ;; esac
done
script=${@: -1}
jobid=$(( $(cat "$state/next" 2>/dev/null || echo 500) + 1 )); echo "$jobid" > "$state/next"
range=${array%%\%*}; first=${range%-*}; last=${range#*-}
for ((t = first; t <= last; t++)); do
  if [ "$t" = "${FAKE_SLURM_KILL_TASK:-}" ]; then
    echo "${jobid}_$t|OUT_OF_MEMORY" >> "$state/sacct"   # never runs: killed by the cluster
    continue
  fi
  ( sleep 0.3; SLURM_ARRAY_TASK_ID=$t SLURM_JOB_ID=$jobid bash "$script" ) \
    > "${out//%a/$t}" 2>&1 < /dev/null &
  echo $! >> "$state/pids.$jobid"
done
echo "$jobid;fakecluster"
"""

FAKE_SQUEUE = r"""#!/usr/bin/env bash
state=$FAKE_SLURM_STATE
printf '%s\n' "squeue $*" >> "$state/calls"
while [ $# -gt 0 ]; do case "$1" in -j) job=$2; shift 2 ;; *) shift ;; esac; done
for pid in $(cat "$state/pids.$job" 2>/dev/null); do
  if kill -0 "$pid" 2>/dev/null; then echo "$job"; exit 0; fi
done
"""

FAKE_SACCT = r"""#!/usr/bin/env bash
state=$FAKE_SLURM_STATE
printf '%s\n' "sacct $*" >> "$state/calls"
while [ $# -gt 0 ]; do case "$1" in -j) job=$2; shift 2 ;; *) shift ;; esac; done
grep "^$job|" "$state/sacct" 2>/dev/null | cut -d'|' -f2 || echo COMPLETED
"""

FAKE_SRUN = r"""#!/usr/bin/env bash
state=$FAKE_SLURM_STATE
printf '%s\n' "srun $*" >> "$state/calls"
out=/dev/null
for a in "$@"; do case "$a" in --output=*) out=${a#--output=} ;; esac; done
bash "${@: -1}" > "$out" 2>&1
"""

FAKE_SCANCEL = r"""#!/usr/bin/env bash
printf '%s\n' "scancel $*" >> "$FAKE_SLURM_STATE/calls"
"""

SLURM_CONF = """\
# test cluster
command sbatch --export=ALL --ntasks=1
default gpu=0
option gpu=0 --partition=cpu
option gpu=* --partition=gpu --gres=gpu:$0
option mem=* --mem=$0
option num_threads=* --cpus-per-task=$0
option time=* --time=$0
"""


@pytest.fixture
def slurm(tmp_path: Path):
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("squeue", FAKE_SQUEUE), ("sacct", FAKE_SACCT),
                       ("srun", FAKE_SRUN), ("scancel", FAKE_SCANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    work = tmp_path / "recipe"
    (work / "conf").mkdir(parents=True)
    (work / "conf" / "slurm.conf").write_text(SLURM_CONF)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SLURM_STATE": str(state)}

    def run(*args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(RUN_SLURM), "--poll-interval", "0.2", "--sync-timeout", "1", *args],
            cwd=work, capture_output=True, text=True, timeout=60, env={**env, **(extra_env or {})},
        )

    def calls() -> list[str]:
        path = state / "calls"
        return path.read_text().splitlines() if path.exists() else []

    return run, calls, work


def test_slurm_array_one_sbatch_and_waits(slurm) -> None:
    run, calls, work = slurm
    result = run("--mem", "2G", "--gpu", "1", "JOB=1:3", "exp/log/dec.JOB.log",
                 "bash", "-c", "sleep 0.3; echo task JOB > out.JOB")
    assert result.returncode == 0, result.stderr
    sbatch = [c for c in calls() if c.startswith("sbatch")]
    assert len(sbatch) == 1
    for option in ("--export=ALL", "--ntasks=1", "--partition=gpu", "--gres=gpu:1", "--mem=2G",
                   "--parsable", "--array=1-3", "--job-name=dec."):
        assert option in sbatch[0].split(), (option, sbatch[0])
    assert any(c.startswith("squeue") for c in calls())  # it polled the queue
    for job in (1, 2, 3):  # every task had finished when the launcher returned
        assert (work / f"out.{job}").read_text() == f"task {job}\n"
        log = (work / f"exp/log/dec.{job}.log").read_text().splitlines()
        assert log[0] == f'# bash -c "sleep 0.3; echo task {job} > out.{job}"'
        assert log[-1].startswith("# Ended (code 0)")


def test_slurm_failing_task_is_named(slurm) -> None:
    run, calls, work = slurm
    result = run("--max-jobs-run", "2", "JOB=1:4", "log/x.JOB.log", "bash", "-c", "[ JOB != 3 ]")
    assert result.returncode == 1
    assert "1 / 4 job(s) failed; see log/x.3.log" in result.stderr
    assert "--array=1-4%2" in next(c for c in calls() if c.startswith("sbatch")).split()
    assert (work / "log/x.3.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")


def test_slurm_killed_task_reports_slurm_state(slurm) -> None:
    run, calls, work = slurm
    result = run("JOB=1:3", "log/k.JOB.log", "true", extra_env={"FAKE_SLURM_KILL_TASK": "2"})
    assert result.returncode == 1
    assert "task 2 left no exit status (Slurm state: OUT_OF_MEMORY)" in result.stderr
    assert "see log/k.2.log" in result.stderr
    assert any(c.startswith("sacct") and "_2" in c for c in calls())


def test_slurm_single_job_uses_srun(slurm) -> None:
    run, calls, work = slurm
    result = run("--num-threads", "4", "log/train.log", "echo", "trained", ">", "model.txt")
    assert result.returncode == 0, result.stderr
    (srun,) = [c for c in calls() if c.startswith("srun")]
    assert "--partition=cpu" in srun.split() and "--cpus-per-task=4" in srun.split()
    assert not any(c.startswith("sbatch") for c in calls())
    assert (work / "model.txt").read_text() == "trained\n"
    result = run("log/bad.log", "bash", "-c", "exit 7")
    assert result.returncode == 1 and "job failed (code 7); see log/bad.log" in result.stderr


def test_slurm_config_errors(slurm, tmp_path: Path) -> None:
    run, calls, work = slurm
    result = run("--colour", "red", "JOB=1:2", "log/c.JOB.log", "true")
    assert result.returncode == 1 and "--colour red: " in result.stderr
    assert "has no rule for it" in result.stderr
    result = run("--config", str(tmp_path / "none.conf"), "log/c.log", "true")
    assert result.returncode == 1 and "none.conf' not found" in result.stderr
    assert calls() == []  # nothing was submitted


@pytest.mark.gpu
def test_run_local_gpu_request_with_a_gpu(tmp_path: Path) -> None:
    smi = shutil.which("nvidia-smi")
    if smi is None or subprocess.run([smi, "-L"], capture_output=True).returncode != 0:
        pytest.skip("no GPU visible to nvidia-smi")
    result = run_local("--gpu", "1", "g.log", "nvidia-smi", "-L", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "GPU 0" in (tmp_path / "g.log").read_text()
