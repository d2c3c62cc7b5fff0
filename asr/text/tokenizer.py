"""Character tokenizer. Token 0 is the CTC blank; ``<space>`` separates words.

The token list is stored as Kaldi's ``tokens.txt`` (``<symbol> <id>`` per line).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from asr.errors import ModelError

BLANK = "<blank>"
SPACE = "<space>"
UNK = "<unk>"


class CharTokenizer:
    """Maps text to character ids and back. Unknown characters map to ``<unk>``."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if len(tokens) < 3 or tokens[0] != BLANK or UNK not in tokens:
            raise ValueError(f"token list must start with {BLANK} and contain {UNK}")
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("token list has duplicates")
        self.unk_id = self.index[UNK]

    @classmethod
    def build(cls, texts: Iterable[str]) -> CharTokenizer:
        """Collect every character of ``texts`` (sorted, so the ids are reproducible)."""
        chars: set[str] = set()
        for text in texts:
            chars.update(text.replace(" ", ""))
        return cls([BLANK, UNK, SPACE, *sorted(chars)])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word_index, word in enumerate(text.split()):
            if word_index:
                ids.append(self.index[SPACE])
            ids.extend(self.index.get(char, self.unk_id) for char in word)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        pieces = []
        for i in ids:
            token = self.tokens[i]
            if token == BLANK:
                continue
            pieces.append(" " if token == SPACE else token)
        return " ".join("".join(pieces).split())

    def save(self, path: str | Path) -> None:
        from asr.utils import atomic_write_text

        atomic_write_text(path, "".join(f"{t} {i}\n" for i, t in enumerate(self.tokens)))

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
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
            return cls(tokens)
        except ValueError as exc:
            raise ModelError(f"{path}: {exc}") from None
