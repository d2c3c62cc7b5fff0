"""Text units for CTC: tokenizers and their on-disk token lists."""

from asr.text.tokenizer import BLANK, SPACE, UNK, CharTokenizer

__all__ = ["BLANK", "SPACE", "UNK", "CharTokenizer"]
