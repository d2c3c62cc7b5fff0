"""Stopping cleanly on SIGINT/SIGTERM: the first signal asks for a stop after the current
update (the trainer then saves a checkpoint and raises :class:`TrainingInterrupted`); a second
one stops at once."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from asr.errors import AsrError

log = logging.getLogger("asr.train")


class TrainingInterrupted(AsrError):
    """SIGINT or SIGTERM arrived; a checkpoint was saved and the run can be resumed."""

    exit_code = 130


class StopRequest:
    """A flag set by a signal handler (or :meth:`request`), read between updates."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum or signal.SIGINT).name

    def request(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum

    @contextmanager
    def handlers(self) -> Iterator[None]:
        """SIGINT and SIGTERM set the flag inside the block (main thread only); the previous
        handlers come back after it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.signum = signum
            log.warning("%s received: saving a checkpoint after this update", self.name)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, old in previous.items():
                signal.signal(s, old)
