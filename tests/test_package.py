"""The package on its own: no module reaches out of the installed package into a checkout
(recipes/, ../shared, the repository root), and the wheel installs and runs by itself."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "asr"
# Path(__file__)[.resolve()] followed by .parent steps and/or .parents[N]
CLIMB = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parent\b)*)(?:\.parents\[(\d+)\])?")
INTO_CHECKOUT = re.compile(r"""["'](recipes|shared)["']\s*[/)]|/ ["'](recipes|shared)["']""")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_reaches_above_the_package() -> None:
    """A wheel has no recipes/, no ../shared and no repository root: a module that builds such
    a path works from a checkout only."""
    problems = []
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        inside = len(path.relative_to(PACKAGE).parts)  # levels up to asr/ itself: 1 for asr/x.py
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in CLIMB.finditer(line):
                levels = match[1].count(".parent") + (int(match[2]) + 1 if match[2] else 0)
                if levels > inside:
                    problems.append(f"{rel}:{number}: {match[0]} is above the package")
            if INTO_CHECKOUT.search(line):
                problems.append(f"{rel}:{number}: a path into a checkout: {line.strip()}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow  # builds a wheel and trains once: about 50 s on 2 busy cores
def test_the_wheel_installs_and_runs_outside_the_repository() -> None:
    if shutil.which("git") is None or not (ROOT / ".venv" / "bin" / "python").is_file():
        pytest.skip("needs git and the project's .venv (tools/install.sh)")
    start = time.monotonic()
    proc = subprocess.run([str(ROOT / "tools" / "check_wheel.sh")], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "all checks passed" in proc.stdout, proc.stdout
    assert time.monotonic() - start < 600
