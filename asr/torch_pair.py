"""Is the installed torch / torchaudio a matching pair? Checked when ``asr`` is imported.

torchaudio is built against one torch release: torchaudio 2.N goes with torch 2.N, and any other
pairing fails at first use with an undefined-symbol error that names neither package. The
versions are read from the installed metadata, without importing torch, so that the commands
that need no torch (``asr score``, ``asr data``) start as fast as before.
"""

from __future__ import annotations

import logging
import re
from importlib import metadata

TESTED_PAIR = "2.11.0"  # the pair tools/install.sh installs; README lists the others tested

log = logging.getLogger("asr")


def installed_version(package: str) -> str | None:
    """The installed version of ``package``, None when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def mismatch(torch: str | None, torchaudio: str | None) -> str | None:
    """One line saying what is wrong with the pair and what to install; None when it matches
    (or when either is missing: importing it then fails with its own clear ImportError)."""
    if torch is None or torchaudio is None:
        return None
    t, a = _major_minor(torch), _major_minor(torchaudio)
    if t is None or a is None or t[0] != 2 or t == a:
        return None  # unparsable or torch 1.x (torchaudio 0.x then): not ours to judge
    return (f"asr: torch {torch} and torchaudio {torchaudio} are not a matching pair "
            f"(torchaudio {t[0]}.{t[1]} goes with torch {t[0]}.{t[1]}); install one, e.g. "
            f"pip install 'torchaudio=={t[0]}.{t[1]}.*', or the tested pair: pip install "
            f"torch=={TESTED_PAIR} torchaudio=={TESTED_PAIR}")


def check_torch_pair() -> str | None:
    """Log the mismatch (one warning line) if the installed pair does not match; return it."""
    problem = mismatch(installed_version("torch"), installed_version("torchaudio"))
    if problem:
        log.warning("%s", problem)
    return problem
