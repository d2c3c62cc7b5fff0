"""The torch / torchaudio pair check at ``import asr``: one warning line naming both versions and
what to install, from installed metadata alone (torch is not imported)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asr import torch_pair
from asr.torch_pair import check_torch_pair, mismatch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("torch, torchaudio", [
    ("2.11.0", "2.11.0"), ("2.6.0+cu124", "2.6.0+cu124"), ("2.13.0+cpu", "2.13.1"),
    (None, "2.11.0"), ("2.11.0", None), ("1.13.1", "0.13.1"),
])
def test_matching_or_unknown_pairs_say_nothing(torch, torchaudio) -> None:
    assert mismatch(torch, torchaudio) is None


@pytest.mark.parametrize("torch, torchaudio", [("2.10.0", "2.11.0"), ("2.11.0", "2.6.0"),
                                               ("2.11.0+cpu", "0.13.1")])
def test_a_mismatch_names_both_and_what_to_install(torch, torchaudio) -> None:
    message = mismatch(torch, torchaudio)
    assert message is not None and "\n" not in message
    assert f"torch {torch} and torchaudio {torchaudio} are not a matching pair" in message
    minor = ".".join(torch.split(".")[:2])
    assert f"pip install 'torchaudio=={minor}.*'" in message
    assert "pip install torch==2.11.0 torchaudio==2.11.0" in message


def test_check_reads_metadata_and_warns_once(monkeypatch, caplog) -> None:
    versions = {"torch": "2.10.0", "torchaudio": "2.11.0"}
    monkeypatch.setattr(torch_pair, "installed_version", versions.get)
    with caplog.at_level(logging.WARNING, logger="asr"):
        problem = check_torch_pair()
    assert problem is not None
    assert [r.getMessage() for r in caplog.records] == [problem]
    versions["torch"] = "2.11.0"
    caplog.clear()
    assert check_torch_pair() is None and not caplog.records


def _fake_dist(root: Path, name: str, version: str) -> None:
    info = root / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_import_asr_prints_one_line_and_does_not_import_torch(tmp_path: Path) -> None:
    """A real interpreter that sees a mismatched pair's metadata first (on PYTHONPATH)."""
    fake = tmp_path / "fake"
    _fake_dist(fake, "torch", "2.10.0")
    _fake_dist(fake, "torchaudio", "2.11.0")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), str(ROOT)]))
    code = "import sys, asr; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "torch 2.10.0 and torchaudio 2.11.0 are not a matching pair" in lines[0]
