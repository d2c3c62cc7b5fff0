"""Live training progress that outlives the job's own terminal.

A recipe runs ``asr train`` through a launcher (``run_local.sh``, ``run_slurm.sh``) that sends
its output to a log file, so the trainer's own progress bar never reaches the user. Instead,
rank 0 keeps ``EXP/progress.json`` up to date (a small JSON object, replaced atomically about
once a second) and ``asr follow EXP`` (:func:`follow`), run beside the job, prints the new lines
of ``EXP/train.log`` as they are written (one per epoch: train loss, dev WER, seconds, ETA) and,
on a terminal, draws a tqdm bar of the current epoch from ``progress.json``. Both files live in
the experiment directory, so following works wherever that directory is visible (a Slurm job on
a shared filesystem too). This module does not import torch.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

PROGRESS_FILE = "progress.json"
LOG_FILE = "train.log"


@dataclass
class Progress:
    """Where a run is: ``batch`` of ``batches`` of epoch ``epoch`` (1-based) of ``epochs``."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float  # running train loss per utterance of this epoch
    elapsed: float  # seconds since this epoch (or its resumed part) started
    pid: int = 0  # the training process, so that a follower can tell a finished run
    done: bool = False  # set when the run has exported its model or stopped


class ProgressWriter:
    """Replaces ``EXP/progress.json`` at most every ``interval`` seconds (and always when told
    to). No fsync: the file is a view for the eyes, rewritten constantly, never state."""

    def __init__(self, exp_dir: str | Path, interval: float = 1.0, enabled: bool = True) -> None:
        self.path = Path(exp_dir) / PROGRESS_FILE
        self.interval = interval
        self.enabled = enabled
        self._last = -float("inf")

    def update(self, progress: Progress, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.interval):
            return
        self._last = now
        progress.pid = os.getpid()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(progress)) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:  # a full disk must not stop training for a progress view
            tmp.unlink(missing_ok=True)


def read_progress(exp_dir: str | Path) -> Progress | None:
    """The last progress written to ``EXP/progress.json``, or None (absent or being replaced)."""
    try:
        data = json.loads((Path(exp_dir) / PROGRESS_FILE).read_text(encoding="utf-8"))
        return Progress(**data)
    except (OSError, ValueError, TypeError):
        return None


class LogTail:
    """The lines appended to a file since this object was made (the file may not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self._partial = b""

    def new_lines(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self.offset:  # truncated or replaced: start over
            self.offset = 0
        if size == self.offset:
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = self._partial + handle.read(size - self.offset)
        self.offset = size
        *lines, self._partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]


class _Stop:
    """Set by SIGTERM/SIGINT: the follower prints what is left of the log, then returns."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self.requested = True


def follow(
    exp_dir: str | Path,
    out: IO[str] | None = None,
    bar: bool | None = None,
    poll: float = 0.5,
    timeout: float | None = None,
) -> int:
    """Print the lines appended to ``EXP/train.log`` from now on and, when ``bar`` (default:
    ``out`` is a terminal), a tqdm bar of the current epoch. Returns the number of lines
    printed once the run is done (its ``progress.json`` says so), on SIGTERM/SIGINT, or after
    ``timeout`` seconds; the lines written until then are printed first."""
    out = out or sys.stdout
    exp = Path(exp_dir)
    bar = out.isatty() if bar is None else bar
    tail = LogTail(exp / LOG_FILE)
    start_progress = read_progress(exp)
    stale = start_progress.pid if start_progress else None  # a finished earlier run's file
    stop = _Stop()
    in_main = threading.current_thread() is threading.main_thread()  # signals go to it only
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
    shown = None
    printed = 0
    started = time.monotonic()

    def emit(lines: list[str]) -> None:
        nonlocal printed
        for line in lines:  # above the bar when there is one
            print(line, file=out, flush=True) if shown is None else shown.write(line, file=out)
        printed += len(lines)

    try:
        while True:
            finished = stop.requested or (timeout is not None and time.monotonic() - started > timeout)
            emit(tail.new_lines())
            progress = read_progress(exp)
            if progress is not None and not (progress.done and progress.pid == stale):
                if progress.done:
                    finished = True
                elif bar:
                    shown = _draw(shown, progress, out)
            if finished:
                emit(tail.new_lines())  # what came with the last poll
                return printed
            time.sleep(poll)
    finally:
        if shown is not None:
            shown.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _draw(shown, progress: Progress, out: IO[str]):
    from tqdm import tqdm

    desc = f"epoch {progress.epoch}/{progress.epochs}"
    if shown is None or shown.desc != desc or shown.total != progress.batches:
        if shown is not None:
            shown.close()
        shown = tqdm(total=progress.batches, desc=desc, unit="batch", file=out, leave=False,
                     dynamic_ncols=True)
    shown.n = min(progress.batch, progress.batches)
    shown.set_postfix(loss=f"{progress.loss:.3f}", refresh=False)
    shown.refresh()
    return shown
