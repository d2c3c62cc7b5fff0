"""Tokenizers for CTC output units. Token 0 is the CTC blank.

``char``: one token per character, ``<space>`` between words (open vocabulary).
``word``: one token per word of the training transcripts (closed vocabulary, for tasks such
as yes/no or digits where every word is seen in training, as Kaldi's word-level recipes do).
The token list is stored as Kaldi's ``tokens.txt`` (``<symbol> <id>`` per line); the unit is
recorded in the model's config (``tokenizer.type``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from asr.errors import ModelError

BLANK = "<blank>"
SPACE = "<space>"
UNK = "<unk>"

Unit = Literal["char", "word"]


class Tokenizer:
    """Maps text to token ids and back. Unknown characters (or words) map to ``<unk>``."""

    def __init__(self, tokens: Sequence[str], unit: Unit = "char") -> None:
        if unit not in ("char", "word"):
            raise ValueError(f"unknown tokenizer unit {unit!r} (expected 'char' or 'word')")
        if len(tokens) < 3 or tokens[0] != BLANK or UNK not in tokens:
            raise ValueError(f"token list must start with {BLANK} and contain {UNK}")
        if unit == "char" and SPACE not in tokens:
            raise ValueError(f"a character token list must contain {SPACE}")
        self.unit: Unit = unit
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("token list has duplicates")
        self.unk_id = self.index[UNK]
        self.space_id = self.index.get(SPACE)

    @classmethod
    def build(cls, texts: Iterable[str], unit: Unit = "char") -> Tokenizer:
        """Collect every character (or word) of ``texts``, sorted so the ids are reproducible."""
        units: set[str] = set()
        for text in texts:
            units.update(text.replace(" ", "") if unit == "char" else text.split())
        specials = [BLANK, UNK, SPACE] if unit == "char" else [BLANK, UNK]
        return cls([*specials, *sorted(units - set(specials))], unit)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        if self.unit == "word":
            return [self.index.get(word, self.unk_id) for word in text.split()]
        ids: list[int] = []
        for word_index, word in enumerate(text.split()):
            if word_index:
                ids.append(self.space_id)
            ids.extend(self.index.get(char, self.unk_id) for char in word)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [self.tokens[i] for i in ids if i != 0]
        if self.unit == "word":
            return " ".join(pieces)
        return " ".join("".join(" " if p == SPACE else p for p in pieces).split())

    def word_groups(self, ids: Sequence[int]) -> list[list[int]]:
        """Positions in ``ids`` (blanks already removed) grouped into words, in order."""
        if self.unit == "word":
            return [[i] for i in range(len(ids))]
        groups: list[list[int]] = [[]]
        for position, token in enumerate(ids):
            if token == self.space_id:
                groups.append([])
            else:
                groups[-1].append(position)
        return [g for g in groups if g]

    def save(self, path: str | Path) -> None:
        from asr.utils import atomic_write_text

        atomic_write_text(path, "".join(f"{t} {i}\n" for i, t in enumerate(self.tokens)))

    @classmethod
    def load(cls, path: str | Path, unit: Unit = "char") -> Tokenizer:
        path = Path(path)
        tokens: list[str] = []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path}: cannot read token list ({exc})") from None
        for lineno, line in enumerate(lines, 1):
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) != len(tokens):
                raise ModelError(f"{path}:{lineno}: expected '<symbol> {len(tokens)}', got {line!r}")
            tokens.append(parts[0])
        try:
            return cls(tokens, unit)
        except ValueError as exc:
            raise ModelError(f"{path}: {exc}") from None
