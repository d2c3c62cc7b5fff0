"""The Kaldi table format every data-directory file shares: ``<id> <value>`` lines.

Files are UTF-8, one ``<id> <value>`` per line (fields separated by spaces or tabs, as Kaldi's
tools split them), sorted in C-locale (byte) order as Kaldi's ``utils/validate_data_dir.sh``
requires. :func:`scan_kaldi_file` reports every problem of a file with its line;
:func:`read_kaldi_map` stops at the first one that makes the file unreadable. What a value
means is each file type's business (:mod:`asr.data.files`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from asr.errors import DataDirError
from asr.utils import atomic_write_text

# Problems that make a file unreadable (the rest are reported by validation only).
FATAL_KINDS = frozenset({"utf8", "crlf", "blank", "duplicate", "no-value", "id-space"})

# Whitespace other than space and tab: Kaldi's field splitting does not treat it as a
# separator, so inside an id or a transcript it silently makes a different token.
_ODD_SPACE = re.compile(r"[^\S \t]")
_FIELDS = re.compile(r"[ \t]*([^ \t]+)(?:[ \t]+(.*))?")


@dataclass(frozen=True)
class Problem:
    """One problem of a data directory, located by file and (when it has one) line."""

    path: Path
    line: int | None
    message: str
    kind: str = "other"
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"


@dataclass(frozen=True)
class Line:
    """One usable line of a table file: its number, the id and the value as written."""

    lineno: int
    key: str
    value: str


def c_sort_key(key: str) -> bytes:
    """Kaldi sorts with ``LC_ALL=C``: by UTF-8 bytes."""
    return key.encode("utf-8")


def format_float(value: float) -> str:
    """Shortest decimal that reads back as ``value``, never in exponent form (``1.5``, ``2``)."""
    return np.format_float_positional(float(value), trim="-")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataDirError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataDirError(f"{path}: is a directory, not a Kaldi file") from None
    except OSError as exc:
        raise DataDirError(f"{path}: cannot read ({exc.strerror})") from None


def scan_kaldi_file(
    path: str | Path, allow_empty_value: bool = False
) -> tuple[list[Line], list[Problem]]:
    """Every usable line of ``path`` and every problem found, each with its line number.

    Lines that cannot be used (not UTF-8, blank, duplicate id, no value) are reported and left
    out; CRLF endings are reported and stripped; out-of-order ids are reported and kept.
    """
    path = Path(path)
    raw = _read_bytes(path)
    chunks = raw.split(b"\n")
    problems: list[Problem] = []
    if chunks[-1] == b"":
        chunks.pop()
    else:
        problems.append(
            Problem(path, len(chunks), "no newline at the end of the file", "no-final-newline")
        )
    lines: list[Line] = []
    first_seen: dict[str, int] = {}
    for lineno, chunk in enumerate(chunks, 1):
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(
                Problem(path, lineno, f"not valid UTF-8 (byte {exc.start}); re-encode the file "
                        "as UTF-8 (iconv)", "utf8")
            )
            continue
        if text.endswith("\r"):
            problems.append(
                Problem(path, lineno, "CRLF line ending; convert the file with dos2unix", "crlf")
            )
            text = text.rstrip("\r")
        match = _FIELDS.fullmatch(text)
        if match is None:
            problems.append(Problem(path, lineno, "blank line", "blank"))
            continue
        if text[0] in " \t":
            problems.append(
                Problem(path, lineno, "line starts with whitespace", "leading-space", "warning")
            )
        key, value = match[1], (match[2] or "").rstrip(" \t")
        odd = _ODD_SPACE.search(key)
        if odd:
            problems.append(
                Problem(path, lineno, f"id {key!r} holds a whitespace character "
                        f"(U+{ord(odd[0]):04X}); ids may not contain spaces", "id-space")
            )
            continue
        if not value and not allow_empty_value:
            problems.append(Problem(path, lineno, f"'{key}' has no value", "no-value"))
            continue
        if key in first_seen:
            problems.append(
                Problem(path, lineno, f"duplicate id '{key}' (first on line {first_seen[key]})",
                        "duplicate")
            )
            continue
        if lines and c_sort_key(key) < c_sort_key(lines[-1].key):
            problems.append(
                Problem(path, lineno, f"'{key}' is out of order (after '{lines[-1].key}' on line "
                        f"{lines[-1].lineno}); sort with LC_ALL=C sort -k1,1", "unsorted")
            )
        first_seen[key] = lineno
        lines.append(Line(lineno, key, value))
    return lines, problems


def read_kaldi_lines(path: str | Path, allow_empty_value: bool = False) -> list[Line]:
    """The lines of ``path``; the first problem that makes it unreadable is a DataDirError."""
    lines, problems = scan_kaldi_file(path, allow_empty_value)
    for problem in problems:
        if problem.kind in FATAL_KINDS:
            raise DataDirError(str(problem))
    return lines


def read_kaldi_map(path: str | Path, allow_empty_value: bool = False) -> dict[str, str]:
    """Read ``<id> <value...>`` lines into an ordered dict; errors name the file and line."""
    return {line.key: line.value for line in read_kaldi_lines(path, allow_empty_value)}


def write_kaldi_map(path: str | Path, entries: dict[str, str] | Iterable[tuple[str, str]]) -> None:
    """Write ``<id> <value>`` lines sorted in C-locale order, atomically."""
    items = entries.items() if isinstance(entries, dict) else entries
    lines = sorted(items, key=lambda kv: c_sort_key(kv[0]))
    for key, value in lines:
        if not key or any(ch.isspace() for ch in key):
            raise DataDirError(f"{path}: invalid id {key!r} (ids may not be empty or hold spaces)")
        if "\n" in value or "\r" in value:
            raise DataDirError(f"{path}: the value of '{key}' holds a line break")
    keys = [key for key, _ in lines]
    if len(set(keys)) != len(keys):
        dup = next(k for k, n in zip(keys, keys[1:], strict=False) if k == n)
        raise DataDirError(f"{path}: duplicate id '{dup}'")
    atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in lines))
