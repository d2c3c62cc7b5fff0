"""Run one step of a report: a command in its own process group, under a time budget.

A step that fails, overruns its budget or cannot be started is recorded with one error line,
and the report goes on with the next step.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# Lines that name what went wrong, preferred over the last line of stderr (a log line, say).
_ERROR_RE = re.compile(r"error:|Error\b|Exception\b|^FAILED |Killed")


@dataclass
class Outcome:
    """What a step's process left: exit status, wall time, and its stdout/stderr files."""

    status: str  # "ok", "failed" or "timeout"
    seconds: float
    stdout: str
    stderr: str
    error: str | None = None


@dataclass
class Record:
    """One row of the report."""

    name: str
    device: str
    title: str
    status: str  # "ok", "failed", "timeout", "skipped"
    budget_s: float | None = None
    seconds: float | None = None
    command: list[str] | None = None
    reason: str | None = None  # why skipped, or the error line
    summary: str = ""
    output: str = ""  # the step's printed table(s)
    figures: dict | list | None = None  # the step's own JSON
    extra: dict = field(default_factory=dict)


def error_line(stderr: str, stdout: str = "", returncode: int | None = None) -> str:
    """The line of a failed process's output that says why (one line)."""
    for text in (stderr, stdout):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        named = [line for line in lines if _ERROR_RE.search(line)]
        if named:
            return named[-1][:400]
        if text is stderr and lines:
            return lines[-1][:400]
    return f"exit code {returncode}"


def run_command(command: list[str], budget_s: float, log_prefix: Path, cwd: Path,
                env: dict[str, str] | None = None) -> Outcome:
    """Run ``command`` (stdout and stderr to ``log_prefix``.out/.err); kill its whole process
    group when it runs past ``budget_s``, so that the workers it started go with it."""
    out_path, err_path = log_prefix.with_suffix(".out"), log_prefix.with_suffix(".err")
    log_prefix.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    status, returncode = "ok", 0
    with out_path.open("w") as out, err_path.open("w") as err:
        try:
            proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            return Outcome("failed", 0.0, "", "", f"cannot start {command[0]}: {exc}")
        try:
            returncode = proc.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            status = "timeout"
            _kill_group(proc)
        except KeyboardInterrupt:
            _kill_group(proc)
            raise
    seconds = time.perf_counter() - start
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    if status == "timeout":
        return Outcome(status, seconds, stdout, stderr, f"ran past its budget of {budget_s:.0f} s")
    if returncode != 0:
        return Outcome("failed", seconds, stdout, stderr, error_line(stderr, stdout, returncode))
    return Outcome(status, seconds, stdout, stderr)


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
