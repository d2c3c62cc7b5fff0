"""tools/run_local.sh and tools/run_slurm.sh: Kaldi's `$cmd [opts] JOB=1:N LOG command...`.

The Slurm launcher runs against fake sbatch/srun/squeue/sacct/scancel/scontrol (and torchrun)
programs put first on PATH: they record their arguments and run the job script locally (array
tasks and batch jobs in the background, as a cluster would; an srun inside a job of several
nodes once per node), so submission, waiting and failure reporting are real.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
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
# Fake sbatch: records its arguments, starts every array task (or the one batch job, on the
# hosts gpu-n1..gpu-nN of --nodes=N) in the background.
state=$FAKE_SLURM_STATE
printf '%s\n' "sbatch $*" >> "$state/calls"
array=""; out=""; nodes=1
for a in "$@"; do
  case "$a" in
    --array=*) array=${a#--array=} ;; --output=*) out=${a#--output=} ;;
    --nodes=*) nodes=${a#--nodes=} ;;
  esac
done
script=${@: -1}
jobid=$(( $(cat "$state/next" 2>/dev/null || echo 500) + 1 )); echo "$jobid" > "$state/next"
if [ -z "$array" ]; then
  if [ "${FAKE_SLURM_KILL_TASK:-}" = job ]; then
    echo "$jobid|NODE_FAIL" >> "$state/sacct"; echo "$jobid;fakecluster"; exit 0
  fi
  hosts=$(for ((n = 1; n <= nodes; n++)); do printf 'gpu-n%d,' $n; done)
  ( sleep 0.3; SLURM_JOB_ID=$jobid SLURM_JOB_NUM_NODES=$nodes SLURM_JOB_NODELIST=${hosts%,} \
    bash "$script" ) > "$out" 2>&1 < /dev/null &
  echo $! >> "$state/pids.$jobid"
  echo "$jobid;fakecluster"
  exit 0
fi
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
# Fake srun: outside a job it runs its command (bash SCRIPT) once, into --output; inside a
# job of several nodes with --ntasks-per-node=1 it runs it once per node, at the same time,
# with SLURM_NODEID, and exits with the highest exit status, as srun does.
state=$FAKE_SLURM_STATE
printf '%s\n' "srun $*" >> "$state/calls"
out=/dev/null; per_node=""
while [ $# -gt 0 ]; do
  case "$1" in
    --output=*) out=${1#--output=}; shift ;;
    --ntasks-per-node=1) per_node=1; shift ;;
    --*) shift ;;
    *) break ;;
  esac
done
if [ -z "$per_node" ] || [ -z "${SLURM_JOB_NUM_NODES:-}" ]; then
  "$@" > "$out" 2>&1
  exit
fi
pids=()
for ((n = 0; n < SLURM_JOB_NUM_NODES; n++)); do
  SLURM_NODEID=$n SLURM_PROCID=$n "$@" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid"; s=$?; [ $s -gt $rc ] && rc=$s; done
exit $rc
"""

FAKE_SCONTROL = r"""#!/usr/bin/env bash
# Fake `scontrol show hostnames LIST` for LIST = host1,host2,...
printf '%s\n' "scontrol $*" >> "$FAKE_SLURM_STATE/calls"
[ "$1 $2" = "show hostnames" ] || exit 1
tr ',' '\n' <<< "$3"
"""

FAKE_TORCHRUN = r"""#!/usr/bin/env bash
# Fake torchrun: records its arguments and node, then runs the program once (--no-python
# PROGRAM ARGS...).
printf '%s\n' "torchrun[node ${SLURM_NODEID:-?}] $*" >> "$FAKE_SLURM_STATE/calls"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-python) shift; break ;;
    --*=*) shift ;;
    --*) shift 2 ;;
    *) echo "fake torchrun: only --no-python PROGRAM is supported" >&2; exit 2 ;;
  esac
done
exec "$@"
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
default nodes=1
option nodes=1
option nodes=* --nodes=$0 --ntasks=$0 --ntasks-per-node=1
"""


@pytest.fixture
def slurm(tmp_path: Path):
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("squeue", FAKE_SQUEUE), ("sacct", FAKE_SACCT),
                       ("srun", FAKE_SRUN), ("scancel", FAKE_SCANCEL),
                       ("scontrol", FAKE_SCONTROL), ("torchrun", FAKE_TORCHRUN)):
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


# ---- Slurm across nodes: --nodes N, one torchrun per node

NODE_JOB = """\
echo "node $SLURM_NODEID of $SLURM_JOB_NUM_NODES: $*"
exit $(( SLURM_NODEID == ${FAIL_NODE:--1} ? 3 : 0 ))
"""

TORCHRUN_LINE = (
    'cmd="srun --ntasks-per-node=1 --kill-on-bad-exit=1 '
    '${SLURM_CPUS_PER_TASK:+--cpus-per-task=$SLURM_CPUS_PER_TASK }'
    'torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint $head:29500 '
    '--rdzv-id $SLURM_JOB_ID ${cmd#torchrun }"'
)


def test_slurm_nodes_batch_script(slurm) -> None:
    """--nodes 2 --gpu 4: one sbatch of 2 nodes × 1 task; its script starts torchrun per node."""
    run, calls, work = slurm
    (work / "node_job.sh").write_text(NODE_JOB)
    result = run("--nodes", "2", "--gpu", "4", "--mem", "64G", "log/train.log",
                 "torchrun", "--no-python", "bash", "node_job.sh", "--exp-dir", "exp/x")
    assert result.returncode == 0, result.stderr
    assert not any(c.startswith("srun") and "bash log/q/" in c for c in calls())  # no srun job
    (sbatch,) = [c for c in calls() if c.startswith("sbatch")]
    words = sbatch.split()
    for option in ("--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--partition=gpu",
                   "--gres=gpu:4", "--mem=64G", "--parsable", "--job-name=train",
                   "--output=log/q/train.out", "log/q/train.sh"):
        assert option in words, (option, sbatch)
    assert not any(w.startswith("--array") for w in words)
    assert words.index("--ntasks=2") > words.index("--ntasks=1")  # the later one wins
    lines = (work / "log/q/train.sh").read_text().splitlines()
    i = lines.index("log=log/train.log")
    assert lines[i + 1:i + 4] == [
        'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" 2>/dev/null | head -n 1)',
        '[ -n "$head" ] || head=$(hostname)',
        TORCHRUN_LINE,
    ]
    # The rendezvous is on the first of the job's hosts (fake scontrol: gpu-n1, gpu-n2).
    assert "scontrol show hostnames gpu-n1,gpu-n2" in calls()
    expected = ("torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint "
                "gpu-n1:29500 --rdzv-id 501 --no-python bash node_job.sh --exp-dir exp/x")
    (srun,) = [c for c in calls() if c.startswith("srun")]
    assert srun == "srun --ntasks-per-node=1 --kill-on-bad-exit=1 " + expected
    torchruns = sorted(c for c in calls() if c.startswith("torchrun"))
    assert torchruns == [f"torchrun[node 0] {expected[9:]}", f"torchrun[node 1] {expected[9:]}"]


def test_slurm_nodes_job_runs_waits_and_propagates_status(slurm) -> None:
    run, calls, work = slurm
    (work / "node_job.sh").write_text(NODE_JOB)
    args = ("--nodes", "2", "--gpu", "4", "log/train.log",
            "torchrun", "--no-python", "bash", "node_job.sh", "--exp-dir", "exp/x")
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert "submitted Slurm job 501 (2 nodes)" in result.stderr
    assert any(c.startswith("squeue") for c in calls())  # it waited for the batch job
    log = (work / "log/train.log").read_text().splitlines()
    assert log[0].startswith("# srun --ntasks-per-node=1 --kill-on-bad-exit=1 torchrun --nnodes 2")
    assert "--rdzv-endpoint gpu-n1:29500 --rdzv-id 501 --no-python bash node_job.sh" in log[0]
    assert "node 0 of 2: --exp-dir exp/x" in log and "node 1 of 2: --exp-dir exp/x" in log
    assert log[-1].startswith("# Ended (code 0)")
    assert (work / "log/q/train.status.1").read_text() == "0\n"

    # One node failing fails the job, with its exit status.
    result = run(*args, extra_env={"FAIL_NODE": "1"})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].endswith("job failed (code 3); see log/train.log")
    log = (work / "log/train.log").read_text().splitlines()
    assert "node 0 of 2: --exp-dir exp/x" in log and log[-1].startswith("# Ended (code 3)")

    # A job that Slurm killed (no exit status) is reported with sacct's state.
    result = run(*args, extra_env={"FAKE_SLURM_KILL_TASK": "job"})
    assert result.returncode == 1
    assert "job left no exit status (Slurm state: NODE_FAIL)" in result.stderr


def test_slurm_nodes_fallback_host_port_and_nproc_from_the_command(slurm) -> None:
    """No scontrol: the batch step's own host; ASR_RDZV_PORT; the command's --nproc_per_node."""
    run, calls, work = slurm
    (work.parent / "bin" / "scontrol").unlink()
    assert shutil.which("scontrol") is None, "a real scontrol is on PATH"
    (work / "node_job.sh").write_text(NODE_JOB)
    result = run("--nodes", "3", "--gpu", "8", "log/t.log", "torchrun", "--nproc_per_node=8",
                 "--no-python", "bash", "node_job.sh", extra_env={"ASR_RDZV_PORT": "29611"})
    assert result.returncode == 0, result.stderr
    host = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    torchruns = [c for c in calls() if c.startswith("torchrun")]
    assert len(torchruns) == 3
    for call in torchruns:
        assert call.split(" ", 2)[2] == (
            f"torchrun --nnodes 3 --rdzv-backend c10d --rdzv-endpoint {host}:29611 --rdzv-id 501 "
            "--nproc_per_node=8 --no-python bash node_job.sh")[9:]
    assert "--nodes=3" in next(c for c in calls() if c.startswith("sbatch")).split()


@pytest.mark.parametrize("args, message", [
    (("--nodes", "0", "log/t.log", "torchrun", "x.py"), "--nodes 0: the number of nodes must be"),
    (("--nodes", "two", "log/t.log", "torchrun", "x.py"), "--nodes two: the number of nodes"),
    (("--nodes", "2", "JOB=1:3", "log/t.JOB.log", "torchrun", "x.py"),
     "--nodes 2 runs one job across nodes; it cannot be used with the job range JOB=1:3"),
    (("--nodes", "2", "log/t.log", "python", "x.py"),
     "--nodes 2 starts one torchrun per node; the command must begin with torchrun, not 'python'"),
    (("--nodes", "2", "log/t.log", "torchrun", "--standalone", "x.py"),
     "--nodes 2 sets torchrun's rendezvous itself; remove --standalone from the command"),
    (("--nodes", "2", "log/t.log", "torchrun", "--master_addr=h", "x.py"),
     "remove --master_addr from the command"),
    (("--nodes", "2", "--gpu", "4", "log/t.log", "torchrun", "--nproc_per_node=8", "x.py"),
     "--gpu 4 but the command's torchrun starts 8 processes per node"),
])
def test_slurm_nodes_usage_errors_in_one_line(slurm, args, message) -> None:
    run, calls, work = slurm
    result = run(*args)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert calls() == [] and not (work / "log").exists()  # nothing written or submitted


def test_slurm_nodes_one_is_the_single_node_job(slurm) -> None:
    """--nodes 1 (and the config's default nodes=1) leave the job exactly as without it."""
    run, calls, work = slurm
    result = run("--gpu", "2", "log/one.log", "torchrun", "--no-python", "echo", "hi")
    assert result.returncode == 0, result.stderr
    before = (work / "log/q/one.sh").read_text()
    result = run("--nodes", "1", "--gpu", "2", "log/one.log", "torchrun", "--no-python", "echo",
                 "hi")
    assert result.returncode == 0, result.stderr
    assert (work / "log/q/one.sh").read_text() == before
    srun = "srun --export=ALL --ntasks=1 --partition=gpu --gres=gpu:2 --job-name=one " \
           "--output=log/q/one.out bash log/q/one.sh"
    assert [c for c in calls() if not c.startswith("torchrun")] == [srun, srun]
    assert before == f"""\
#!/usr/bin/env bash
# Written by run_slurm.sh for: torchrun --no-python echo hi
cd {work} || exit 1
[ -f ./path.sh ] && . ./path.sh
task=${{SLURM_ARRAY_TASK_ID:-1}}
cmd=torchrun\\ --no-python\\ echo\\ hi
log=log/one.log
mkdir -p "$(dirname "$log")"
printf "# %s\\n# Started at %s on %s\\n#\\n" "$cmd" "$(date)" "$(hostname)" > "$log"
start=$(date +%s)
bash -c "set -o pipefail; $cmd" >> "$log" 2>&1 < /dev/null
status=$?
elapsed=$(( $(date +%s) - start ))
printf "# Accounting: time=%d threads=%s\\n# Ended (code %d) at %s, elapsed time %d seconds\\n" \
"$elapsed" "${{SLURM_CPUS_PER_TASK:-1}}" "$status" "$(date)" "$elapsed" >> "$log"
status_file=log/q/one.status.$task
echo "$status" > "$status_file.tmp" && mv "$status_file.tmp" "$status_file"
exit $status
"""
    # A job range with --nodes 1 is the array job as before.
    result = run("--nodes", "1", "JOB=1:2", "log/a.JOB.log", "true")
    assert result.returncode == 0, result.stderr
    sbatch = next(c for c in calls() if c.startswith("sbatch")).split()
    assert "--array=1-2" in sbatch and not any(w.startswith("--nodes") for w in sbatch)


def test_slurm_nodes_with_the_real_torchrun(slurm) -> None:
    """The srun torchrun line rendezvouses for real: 2 'nodes' × 2 processes on this host."""
    run, calls, work = slurm
    venv_bin = Path(sys.executable).parent
    if not (venv_bin / "torchrun").exists():
        pytest.skip("torchrun not installed")
    (work.parent / "bin" / "torchrun").unlink()
    (work.parent / "bin" / "scontrol").unlink()  # the head is then `hostname`
    with socket.socket() as sock:
        sock.bind(("", 0))
        port = sock.getsockname()[1]
    (work / "rank.sh").write_text('echo "rank $RANK of $WORLD_SIZE on node $SLURM_NODEID"\n')
    result = run("--nodes", "2", "--gpu", "2", "log/real.log", "torchrun", "--no-python",
                 "bash", "rank.sh", extra_env={
                     "ASR_RDZV_PORT": str(port),
                     "PATH": f"{work.parent / 'bin'}:{venv_bin}:{os.environ['PATH']}"})
    log = (work / "log/real.log").read_text()
    assert result.returncode == 0, result.stderr + log
    ranks = sorted(line for line in log.splitlines() if line.startswith("rank "))
    assert [r.split(" on ")[0] for r in ranks] == [f"rank {r} of 4" for r in range(4)]
    assert {r.split(" on ")[1] for r in ranks} == {"node 0", "node 1"}


@pytest.mark.gpu
def test_run_local_gpu_request_with_a_gpu(tmp_path: Path) -> None:
    smi = shutil.which("nvidia-smi")
    if smi is None or subprocess.run([smi, "-L"], capture_output=True).returncode != 0:
        pytest.skip("no GPU visible to nvidia-smi")
    result = run_local("--gpu", "1", "g.log", "nvidia-smi", "-L", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "GPU 0" in (tmp_path / "g.log").read_text()
