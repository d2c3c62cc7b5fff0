"""Run a list of jobs in a few parallel lanes, each job once its dependencies are done."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_in_lanes(jobs: list[T], lanes: int, needs: Callable[[int], set[int]],
                 work: Callable[[T], R], done: Callable[[int, R], None]) -> None:
    """Run ``work(job)`` for every job, at most ``lanes`` at a time, in list order among those
    whose ``needs(index)`` have finished; ``done(index, result)`` is called in this thread as
    each finishes (so that it may write shared state without locks)."""
    pending = list(range(len(jobs)))
    finished: set[int] = set()
    running: dict[Future, int] = {}
    with ThreadPoolExecutor(max_workers=max(1, lanes)) as pool:
        while pending or running:
            for index in list(pending):
                if len(running) >= max(1, lanes):
                    break
                if needs(index) <= finished:
                    pending.remove(index)
                    running[pool.submit(work, jobs[index])] = index
            if not running:  # what is left waits on jobs that are not in the list
                raise ValueError(f"jobs {pending} need jobs that never run")
            complete, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in complete:
                index = running.pop(future)
                finished.add(index)
                done(index, future.result())
