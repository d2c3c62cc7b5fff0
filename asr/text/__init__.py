"""Text units for CTC: tokenizers and their on-disk token lists."""

from asr.text.lexicon import Lexicon, LexiconError
from asr.text.tokenizer import BLANK, SPACE, UNK, Tokenizer, build_tokenizer, load_tokenizer

__all__ = ["BLANK", "SPACE", "UNK", "Lexicon", "LexiconError", "Tokenizer", "build_tokenizer",
           "load_tokenizer"]
