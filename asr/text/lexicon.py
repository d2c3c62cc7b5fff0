"""Pronunciation lexicons in CMU-dict style: ``WORD PH1 PH2 ...`` per line.

Alternative pronunciations (``WORD(2) ...``, as in CMUdict and Sphinx ``.dic`` files, or a
repeated ``WORD``) are skipped: a word's phones are its first pronunciation. Lines starting
with ``;;;`` (CMUdict's comments) or ``#`` are ignored. Stress digits (``AH0``, ``EY1``) are
stripped unless ``keep_stress`` is set, which gives CMU's 39-phone set from CMUdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from asr.errors import AsrError
from asr.utils import atomic_write_text

ALTERNATE_RE = re.compile(r"^(.+)\((\d+)\)$")
STRESS_RE = re.compile(r"(?<=[A-Za-z])[0-9]$")


class LexiconError(AsrError):
    """A lexicon is unreadable or malformed, or a transcript holds a word it lacks."""


def strip_stress(phone: str) -> str:
    """``AH0`` -> ``AH``; phones without a trailing stress digit are returned unchanged."""
    return STRESS_RE.sub("", phone)


class Lexicon:
    """Words and their first pronunciation. Lookup is exact, then upper-case, then lower-case,
    so an upper-case dictionary serves lower-case transcripts and vice versa."""

    def __init__(self, prons: dict[str, list[str]], path: str | Path | None = None) -> None:
        self.prons = prons
        self.path = Path(path) if path is not None else None

    @classmethod
    def read(cls, path: str | Path, keep_stress: bool = False) -> Lexicon:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
        except FileNotFoundError:
            raise LexiconError(f"{path}: lexicon not found (set tokenizer.lexicon to a "
                               "'WORD PH1 PH2 ...' file)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise LexiconError(f"{path}: cannot read the lexicon ({exc})") from None
        prons: dict[str, list[str]] = {}
        for lineno, line in enumerate(lines, 1):
            if not line.strip() or line.startswith((";;;", "#")):
                continue
            fields = line.split()
            if len(fields) < 2:
                raise LexiconError(f"{path}:{lineno}: expected 'WORD PH1 PH2 ...', got {line!r}")
            word = fields[0]
            if ALTERNATE_RE.match(word) or word in prons:
                continue  # a second pronunciation: the first one is kept
            phones = fields[1:] if keep_stress else [strip_stress(p) for p in fields[1:]]
            prons[word] = phones
        if not prons:
            raise LexiconError(f"{path}: the lexicon is empty")
        return cls(prons, path)

    def __len__(self) -> int:
        return len(self.prons)

    def __contains__(self, word: str) -> bool:
        return self.get(word) is not None

    def get(self, word: str) -> list[str] | None:
        for key in (word, word.upper(), word.lower()):
            if key in self.prons:
                return self.prons[key]
        return None

    def phones(self) -> set[str]:
        return {p for phones in self.prons.values() for p in phones}

    def missing(self, words: Iterable[str]) -> list[str]:
        """Words of ``words`` without a pronunciation, in first-seen order, each once."""
        out: dict[str, None] = {}
        for word in words:
            if word not in out and self.get(word) is None:
                out[word] = None
        return list(out)

    def where(self) -> str:
        return str(self.path) if self.path is not None else "the lexicon"


def write_decoder_lexicon(path: str | Path, lexicon: Lexicon, words: Iterable[str],
                          boundary: str | None = None) -> Path:
    """The lexicon decoder's spelling file for a phone model: ``WORD PH1 PH2 [boundary]`` per
    line, one line per distinct word of ``words`` found in ``lexicon`` (sorted). ``boundary`` is
    the model's word-boundary token (``<space>``) when it was trained with one."""
    lines = []
    for word in sorted(set(words)):
        phones = lexicon.get(word)
        if phones is None or word.startswith("<"):
            continue
        lines.append(" ".join([word, *phones, *([boundary] if boundary else [])]) + "\n")
    if not lines:
        raise LexiconError(f"{lexicon.where()}: none of the words has a pronunciation")
    atomic_write_text(path, "".join(lines))
    return Path(path)
