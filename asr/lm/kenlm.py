"""KenLM's command-line tools: ``lmplz`` (estimation) and ``build_binary`` (ARPA -> binary).

``tools/install_kenlm.sh`` builds both into the project's ``.venv/bin``; they are looked up on
``PATH`` first, then next to the running Python.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from asr.lm.errors import LMError

log = logging.getLogger("asr.lm")

INSTALL_HINT = "build it with tools/install_kenlm.sh"


def find_tool(name: str) -> Path | None:
    """The KenLM program ``name``, or None when it is not installed."""
    found = shutil.which(name)
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / name
    return beside if beside.is_file() and os.access(beside, os.X_OK) else None


def have_kenlm() -> bool:
    return find_tool("lmplz") is not None and find_tool("build_binary") is not None


def _require(name: str) -> Path:
    tool = find_tool(name)
    if tool is None:
        raise LMError(f"KenLM's {name} is not installed; {INSTALL_HINT}")
    return tool


def _run(cmd: list[str], what: str, stdin_path: Path | None = None, stdout_path: Path | None = None) -> None:
    log.debug("running %s", " ".join(cmd))
    with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as stdin, \
            open(stdout_path, "wb") if stdout_path else open(os.devnull, "wb") as stdout:
        proc = subprocess.run(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        reason = next((ln for ln in reversed(lines) if "rror" in ln or "xception" in ln),
                      lines[-1] if lines else f"exit status {proc.returncode}")
        raise LMError(f"{what} failed: {reason.strip()}")


def lmplz(corpus: str | Path, order: int, arpa: str | Path, memory: str = "10%",
          discount_fallback: bool = True) -> Path:
    """Estimate a modified Kneser-Ney ARPA model of ``order`` from ``corpus`` (one sentence of
    space-separated words a line). ``memory`` is lmplz's ``-S`` (sort memory)."""
    tool = _require("lmplz")
    arpa = Path(arpa)
    arpa.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lmplz.", dir=arpa.parent) as tmp:
        cmd = [str(tool), "-o", str(order), "-S", memory, "-T", tmp]
        if discount_fallback:
            # Tiny or artificial corpora (digit strings) lack the counts of counts that the
            # discounts are estimated from; lmplz then uses 0.5, 1, 1.5 instead of failing.
            cmd.append("--discount_fallback")
        partial = Path(tmp) / "lm.arpa"
        _run(cmd, f"lmplz on {corpus}", stdin_path=Path(corpus), stdout_path=partial)
        os.replace(partial, arpa)
    return arpa


def build_binary(arpa: str | Path, binary: str | Path) -> Path:
    """Convert an ARPA model to KenLM's binary format (fast to load: memory-mapped)."""
    tool = _require("build_binary")
    binary = Path(binary)
    binary.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{binary.name}.", dir=binary.parent)
    os.close(fd)
    try:
        _run([str(tool), str(arpa), tmp], f"build_binary on {arpa}")
        os.replace(tmp, binary)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return binary
