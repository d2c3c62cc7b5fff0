"""Benchmarks, each run by ``asr benchmark KIND`` (the one way to run it).

Each module ``asr.benchmarks.<kind>`` defines ``add_arguments(parser)`` and ``run(args) -> int``
and prints its table; ``asr.cli.benchmark`` finds the modules here and registers one kind each.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def source_commit() -> str:
    """The git commit the package runs from (``abc1234``, ``+ local changes`` when its tracked
    files differ), for benchmark headers; an installed package says its version instead."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True,
                              timeout=10)

    try:
        # Only a checkout tracks this very file: site-packages inside some other repository
        # must not report that repository's commit.
        if git("ls-files", "--error-unmatch", Path(__file__).name).returncode != 0:
            raise OSError
        head = git("rev-parse", "--short", "HEAD").stdout.strip()
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from asr import __version__

        return f"none (asr {__version__}, not a git checkout)"
    return f"{head}{' + local changes' if dirty else ''}" if head else "unknown"
