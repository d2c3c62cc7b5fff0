"""Checkpoints: atomic writes, the last N plus the best, random states for an exact resume,
loading weights from any of the files the toolkit writes, and checkpoint averaging.

Files in ``EXP/checkpoints``::

    epoch-N.pt   full training state at the end of epoch N (the last ``keep_last`` are kept)
    step-S.pt    full training state after update S, mid-epoch (``checkpoint_every_steps``,
                 or an interruption); removed once a later epoch checkpoint exists
    best.pt      model weights with the lowest dev loss so far
    last         the name of the newest full checkpoint
"""

from __future__ import annotations

import io
import logging
import os
import random
import re
import time
from pathlib import Path

import numpy as np
import torch

from asr.errors import AsrError
from asr.utils import atomic_write, atomic_write_text

log = logging.getLogger("asr.train")

# Fault-injection hook for the crash tests: seconds to sleep after a checkpoint's bytes are in
# its temporary file and before the rename, so that a test can SIGKILL the run mid-write.
SLOW_WRITE_ENV = "ASR_TEST_CHECKPOINT_WRITE_DELAY"

EPOCH_RE = re.compile(r"^epoch-(\d+)\.pt$")
STEP_RE = re.compile(r"^step-(\d+)\.pt$")


class CheckpointError(AsrError):
    """A checkpoint is missing, unreadable or does not fit the model."""


def rng_state() -> dict:
    """The random states of python, numpy and torch (CPU and every CUDA device), as tensors and
    numbers that ``torch.load(weights_only=True)`` reads back."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "python": torch.tensor(py_state[1], dtype=torch.int64),
        "python_gauss": py_state[2],
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_gauss": (int(np_state[3]), float(np_state[4])),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py_state = random.getstate()
    random.setstate((py_state[0], tuple(int(x) for x in state["python"].tolist()), state["python_gauss"]))
    has_gauss, cached = state["numpy_gauss"]
    np.random.set_state(
        ("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], has_gauss, cached)
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type when the message is empty."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _write_state(state: dict, path: Path) -> None:
    """``torch.save`` through a temporary file renamed into place; a failed write (disk full,
    unwritable directory) is a :class:`CheckpointError` and leaves every older file intact."""

    def write(handle: io.BufferedIOBase) -> None:
        torch.save(state, handle)
        delay = os.environ.get(SLOW_WRITE_ENV)
        if delay:
            handle.flush()
            time.sleep(float(delay))

    try:
        atomic_write(path, write)
    except OSError as exc:
        raise CheckpointError(
            f"{path}: cannot write checkpoint ({exc.strerror or exc}); the previous checkpoints "
            f"in {path.parent} are intact: free disk space or make the directory writable, then "
            "run the same command again to resume"
        ) from None
    except RuntimeError as exc:  # torch.save reports a short write as a RuntimeError
        raise CheckpointError(
            f"{path}: cannot write checkpoint ({first_line(exc)}); the previous "
            f"checkpoints in {path.parent} are intact: free disk space, then run the same command "
            "again to resume"
        ) from None


class Checkpoints:
    """The checkpoint directory of one experiment; see the module docstring."""

    def __init__(self, directory: str | Path, keep_last: int = 3) -> None:
        self.dir = Path(directory)
        self.keep_last = max(1, keep_last)

    def latest(self) -> Path | None:
        """The newest full checkpoint: the one ``last`` names, else the highest epoch."""
        pointer = self.dir / "last"
        if pointer.is_file():
            path = self.dir / pointer.read_text(encoding="utf-8").strip()
            if path.is_file():
                return path
        epochs = [(int(m.group(1)), p) for p in self.dir.glob("epoch-*.pt") if (m := EPOCH_RE.match(p.name))]
        return max(epochs)[1] if epochs else None

    def remove_incomplete(self) -> int:
        """Delete temporary files of writes that a crash interrupted (never renamed into place,
        so never read); call only when no run is writing here. Returns how many."""
        stale = list(self.dir.glob(".*.tmp"))
        for path in stale:
            log.warning("%s: removing an incomplete checkpoint write", path)
            path.unlink(missing_ok=True)
        return len(stale)

    def save(self, state: dict, epoch: int, global_step: int, mid_epoch: bool) -> Path:
        """Write a full training state atomically, point ``last`` at it, drop old ones."""
        name = f"step-{global_step}.pt" if mid_epoch else f"epoch-{epoch}.pt"
        path = self.dir / name
        _write_state(state, path)
        try:
            atomic_write_text(self.dir / "last", name + "\n")
        except OSError as exc:
            raise CheckpointError(
                f"{self.dir / 'last'}: cannot write ({exc.strerror or exc}); {path} is complete: "
                "free disk space, then run the same command again to resume"
            ) from None
        if mid_epoch:
            steps = sorted(
                (int(m.group(1)), p) for p in self.dir.glob("step-*.pt") if (m := STEP_RE.match(p.name))
            )
            for _, old in steps[: -self.keep_last]:
                old.unlink(missing_ok=True)
        else:
            for old in self.dir.glob("step-*.pt"):  # superseded by this epoch's end
                old.unlink(missing_ok=True)
            for old in self.dir.glob("epoch-*.pt"):
                match = EPOCH_RE.match(old.name)
                if match and int(match.group(1)) <= epoch - self.keep_last:
                    old.unlink(missing_ok=True)
        return path

    def save_best(self, weights: dict) -> Path:
        path = self.dir / "best.pt"
        _write_state({k: v.detach().cpu() for k, v in weights.items()}, path)
        return path


def load_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"{path}: unreadable checkpoint ({first_line(exc)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dict of tensors)")
    return state


def weights_path(path: str | Path) -> Path:
    """A model directory -> its ``model.pt``; an experiment directory -> its ``best.pt``; a
    file -> itself."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "model.pt", path / "checkpoints" / "best.pt"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"{path}: no model.pt or checkpoints/best.pt inside; give a model directory, an "
            "experiment directory or a .pt file"
        )
    return path


def load_weights(path: str | Path) -> dict:
    """Model weights from a training checkpoint, ``best.pt``, a model directory or an
    experiment directory."""
    file = weights_path(path)
    state = load_file(file)
    weights = state["model"] if isinstance(state.get("model"), dict) else state
    if not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"{file}: holds no model weights")
    return weights


def average_weights(paths: list[str | Path]) -> dict:
    """The element-wise mean of the weights in ``paths`` (accumulated in float64). Integer
    tensors (counters) are taken from the last file. Every file must hold the same tensors."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    first = load_weights(paths[0])
    sums = {k: v.double() if v.is_floating_point() else v.clone() for k, v in first.items()}
    for path in paths[1:]:
        weights = load_weights(path)
        if weights.keys() != sums.keys():
            missing = sorted(set(sums) ^ set(weights))[:3]
            raise CheckpointError(
                f"{weights_path(path)}: holds different tensors than {weights_path(paths[0])} "
                f"(e.g. {', '.join(missing)}); average checkpoints of one model only"
            )
        for key, value in weights.items():
            if value.shape != sums[key].shape:
                raise CheckpointError(
                    f"{weights_path(path)}: {key} has shape {tuple(value.shape)}, not "
                    f"{tuple(sums[key].shape)}; average checkpoints of one model only"
                )
            if value.is_floating_point():
                sums[key] += value.double()
            else:
                sums[key] = value.clone()
    return {
        k: (v / len(paths)).to(first[k].dtype) if first[k].is_floating_point() else v
        for k, v in sums.items()
    }


def epoch_checkpoints(directory: str | Path) -> list[Path]:
    """``epoch-N.pt`` files of a checkpoint directory, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(directory).glob("epoch-*.pt") if (m := EPOCH_RE.match(p.name))]
    return [p for _, p in sorted(found)]
