"""Spell words in a model's tokens: the lexicon file of the lexicon decoder
(``WORD TOKEN TOKEN ...`` per line).

character models: the letters and ``<space>`` (as ``asr lm lexicon``); BPE models: the
sentencepiece pieces of the word (``HELLO`` -> ``▁HE LLO``), no boundary token; phone models
with a word boundary: use :func:`asr.text.lexicon.write_decoder_lexicon` with the pronunciation
lexicon. Words with a token the model lacks (``<unk>``) are left out and counted.

    python -m asr.text.spell --model exp/final WORDS [WORDS ...] -o lexicon.txt [--kaldi]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

from asr.config import config_from_dict
from asr.errors import AsrError
from asr.text.tokenizer import SPACE, Tokenizer
from asr.utils import atomic_write_text


def spell(tokenizer: Tokenizer, word: str) -> list[str] | None:
    """``word`` in the model's tokens, or None when a token would be ``<unk>``."""
    if tokenizer.unit == "char":
        pieces = [*word, SPACE]
    elif tokenizer.unit == "bpe":
        pieces = [tokenizer.tokens[i] for i in tokenizer.encode(word)]
    else:
        raise AsrError(f"cannot spell words in {tokenizer.unit} tokens (phone models: "
                       "asr.text.lexicon.write_decoder_lexicon with the pronunciation lexicon)")
    if any(p not in tokenizer.index or tokenizer.index[p] == tokenizer.unk_id for p in pieces):
        return None
    return pieces


def write_spelling_lexicon(path: str | Path, tokenizer: Tokenizer, words: Iterable[str]) -> tuple[int, int]:
    """One line per distinct word (sorted); (words written, words left out)."""
    lines, skipped = [], 0
    for word in sorted(set(words)):
        if word.startswith("<"):
            continue
        pieces = spell(tokenizer, word)
        if pieces is None:
            skipped += 1
            continue
        lines.append(f"{word} {' '.join(pieces)}\n")
    if not lines:
        raise AsrError(f"{path}: no word could be spelled in the model's tokens")
    atomic_write_text(path, "".join(lines))
    return len(lines), skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr.text.spell", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model directory (tokens.txt, config.yaml)")
    parser.add_argument("words", nargs="+", help="files of words (first field of each line)")
    parser.add_argument("-o", "--out", required=True, help="the lexicon file to write")
    parser.add_argument("--kaldi", action="store_true", help="WORDS are Kaldi text files (utt-id first)")
    args = parser.parse_args(argv)
    try:
        model = Path(args.model)
        try:
            data = yaml.safe_load((model / "config.yaml").read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise AsrError(f"{model}: not a model directory ({exc})") from None
        data.pop("asr", None)
        config = config_from_dict(data, str(model / "config.yaml"))
        tokenizer = Tokenizer.load(model / "tokens.txt", config.tokenizer.type)
        words: list[str] = []
        for name in args.words:
            try:
                text = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise AsrError(f"{name}: cannot read ({exc})") from None
            for line in text.splitlines():
                fields = line.split()
                words.extend(fields[1:] if args.kaldi else fields[:1])
        written, skipped = write_spelling_lexicon(args.out, tokenizer, words)
    except AsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {written} words" + (f" ({skipped} with unknown tokens left out)" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
