"""Text units for CTC: tokenizers and their on-disk token lists."""

from asr.text.tokenizer import BLANK, SPACE, UNK, Tokenizer

__all__ = ["BLANK", "SPACE", "UNK", "Tokenizer"]
