"""tools/best_wer.sh: the lowest %WER line with its source, as Kaldi's utils/best_wer.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "best_wer.sh"


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    (tmp_path / "exp/a/decode_test").mkdir(parents=True)
    (tmp_path / "exp/b/decode_test").mkdir(parents=True)
    (tmp_path / "exp/a/decode_test/wer").write_text(
        "%WER 12.50 [ 5 / 40, 1 ins, 2 del, 2 sub ]\n%SER 20.00 [ 2 / 10 ]\n"
        "%CER 3.00 [ 6 / 200, 1 ins, 2 del, 3 sub ]\n")
    (tmp_path / "exp/b/decode_test/wer_10").write_text(
        "%WER 7.50 [ 3 / 40, 1 ins, 1 del, 1 sub ]\n%CER 4.00 [ 8 / 200, 1 ins, 2 del, 5 sub ]\n")
    (tmp_path / "exp/b/decode_test/wer_11").write_text("%WER inf [ 3 / 0, 3 ins, 0 del, 0 sub ]\n")
    (tmp_path / "exp/b/decode_test/wer_12").write_text("%WER 7.50 [ 3 / 40, 0 ins, 0 del, 3 sub ]\n")
    return tmp_path


def best(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, input=stdin if stdin is not None else "",
                          capture_output=True, text=True, check=False)


WINNER = "%WER 7.50 [ 3 / 40, 1 ins, 1 del, 1 sub ] exp/b/decode_test/wer_10"


def test_files_directories_and_grep_output_agree(exp: Path) -> None:
    files = sorted(str(p.relative_to(exp)) for p in exp.glob("exp/*/decode*/wer*"))
    assert best(exp, *files).stdout == WINNER + "\n"
    assert best(exp, "exp/a/decode_test", "exp/b/decode_test").stdout == WINNER + "\n"
    grep = subprocess.run(["grep", "WER", *files], cwd=exp, capture_output=True, text=True).stdout
    assert best(exp, stdin=grep).stdout == WINNER + "\n"  # ties keep the first line seen


def test_metric_option_and_unlabelled_lines(exp: Path) -> None:
    out = best(exp, "--metric", "CER", "exp/a/decode_test", "exp/b/decode_test").stdout
    assert out == "%CER 3.00 [ 6 / 200, 1 ins, 2 del, 3 sub ] exp/a/decode_test/wer\n"
    assert best(exp, stdin="%WER 9.00 [ 9 / 100, 0 ins, 0 del, 9 sub ]\n").stdout == \
        "%WER 9.00 [ 9 / 100, 0 ins, 0 del, 9 sub ]\n"


def test_failures(exp: Path) -> None:
    none = best(exp, stdin="nothing to see\n")
    assert none.returncode == 1 and "no %WER line found" in none.stderr
    missing = best(exp, "exp/zzz")
    assert missing.returncode == 1 and "neither a file nor a directory" in missing.stderr
    empty = exp / "empty"
    empty.mkdir()
    assert best(exp, "empty").returncode == 1
    assert best(exp, "--bogus").returncode == 2
