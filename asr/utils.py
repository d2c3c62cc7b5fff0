"""Small shared helpers: atomic writes, device choice, logging set-up."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from asr.errors import AsrError

if TYPE_CHECKING:  # torch is imported only where a device is resolved: scoring and data
    import torch  # commands start without it

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a temporary file in the same directory and rename it into place.

    Readers see the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Discard what native code writes to file descriptor 2 while the block runs (KenLM's
    loading progress bars, which Python's ``sys.stderr`` never sees); Python exceptions still
    carry their messages."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when it is usable, else the CPU."""
    import torch  # here, not at the top: scoring and data commands start without torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AsrError(f"device '{device}' requested but CUDA is not usable here; use --device cpu")
    return torch.device(device)


class _StderrHandler(logging.StreamHandler):
    """A stream handler on whatever ``sys.stderr`` is when a record is written, not when the
    handler was made: a command run after another in one process (tests, notebooks) that
    replaced or closed stderr must not write to the old stream ("I/O operation on closed
    file")."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def setup_logging(verbose: bool = False, log_file: str | Path | None = None) -> None:
    """Log one line per event to stderr and, optionally, to ``log_file`` (appended)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    level = logging.DEBUG if verbose else logging.INFO
    handlers: list[logging.Handler] = [_StderrHandler()]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(level)
