"""Transcript files for scoring: Kaldi ``text`` and sclite ``trn``.

``text``: ``<utt-id> word word ...`` per line (an id alone is an empty transcript).
``trn``: ``word word ... (<utt-id>)`` per line, as sclite reads with ``-i spu_id`` / ``rm``;
the id is what the last pair of parentheses at the end of the line holds.
"""

from __future__ import annotations

import re
from pathlib import Path

from asr.data.tables import read_kaldi_map
from asr.errors import AsrError

FORMATS = ("text", "trn")


class ScoringError(AsrError):
    """A transcript file or a scoring option is unusable; the message says where and why."""


def read_trn(path: str | Path) -> dict[str, str]:
    """Read a ``trn`` file into ``{utt_id: words}`` in file order; errors name file and line."""
    path = Path(path)
    try:
        content = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ScoringError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        lineno = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ScoringError(f"{path}:{lineno}: not valid UTF-8") from None
    except OSError as exc:
        raise ScoringError(f"{path}: cannot read ({exc.strerror})") from None
    entries: dict[str, str] = {}
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the empty string after the final newline
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r").strip()
        open_at = line.rfind("(")
        if not line.endswith(")") or open_at < 0:
            raise ScoringError(
                f"{path}:{lineno}: no '(utterance-id)' at the end of the line; trn lines are "
                "'words (utt-id)' (use --format text for Kaldi '<utt-id> words' files)"
            )
        utt_id = line[open_at + 1 : -1].strip()
        if not utt_id or any(ch.isspace() for ch in utt_id):
            raise ScoringError(f"{path}:{lineno}: invalid utterance id '({utt_id})'")
        if utt_id in entries:
            raise ScoringError(f"{path}:{lineno}: duplicate utterance id '{utt_id}'")
        entries[utt_id] = line[:open_at].strip()
    return entries


# Whitespace other than space, tab and newline (Kaldi splits fields on space and tab only).
_ODD_SPACE = re.compile(r"[^\S \t\n]")


def _read_clean_text(path: Path) -> dict[str, str] | None:
    """A Kaldi ``text`` file read in bulk, or None when anything in it needs the line-by-line
    reader of :mod:`asr.data.tables` (not UTF-8, CRLF, odd whitespace, a blank line, a
    duplicate id). On a clean file both give the same ``{utt_id: words}``; the bulk one is
    about five times faster on 100,000 lines."""
    try:
        content = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if "\r" in content or _ODD_SPACE.search(content):
        return None
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    entries: dict[str, str] = {}
    for line in lines:
        fields = line.split(None, 1)
        if not fields:
            return None
        entries[fields[0]] = fields[1].rstrip(" \t") if len(fields) == 2 else ""
    return entries if len(entries) == len(lines) else None


def read_transcripts(path: str | Path, fmt: str = "text") -> dict[str, str]:
    """``{utt_id: words}`` from a Kaldi ``text`` (``fmt="text"``) or sclite ``trn`` file."""
    if fmt == "text":
        fast = _read_clean_text(Path(path))
        if fast is not None:
            return fast
        # The strict reader names the file and line of whatever made the fast path give up.
        return read_kaldi_map(path, allow_empty_value=True)
    if fmt == "trn":
        return read_trn(path)
    raise ScoringError(f"unknown transcript format '{fmt}'; choose from {', '.join(FORMATS)}")


def speaker_from_trn_id(utt_id: str) -> str:
    """sclite's ``spu_id`` convention: the speaker is the id up to its first ``-`` or ``_``."""
    cut = min((i for i in (utt_id.find("-"), utt_id.find("_")) if i > 0), default=len(utt_id))
    return utt_id[:cut]
