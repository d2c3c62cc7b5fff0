"""Build an n-gram LM from text files: KenLM's ``lmplz`` or the built-in estimator.

Text files hold one sentence a line, or are Kaldi ``text`` files (utterance id first) with
``kaldi=True``. With ``unit="char"`` each word is spelled in characters and words are separated
by the tokenizer's ``<space>`` symbol, which gives a character LM over the same units as a
character acoustic model.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from asr.lm.arpa import BOS, EOS, format_arpa, read_arpa
from asr.lm.errors import LMError
from asr.lm.estimate import estimate_kneser_ney
from asr.lm.kenlm import build_binary, have_kenlm, lmplz
from asr.text.tokenizer import SPACE
from asr.utils import atomic_write_text

log = logging.getLogger("asr.lm")

Estimator = Literal["auto", "kenlm", "builtin"]
LmUnit = Literal["word", "char"]


def char_units(words: Sequence[str]) -> list[str]:
    """``["five", "nine"]`` -> ``["f", "i", "v", "e", "<space>", "n", "i", "n", "e"]``."""
    out: list[str] = []
    for i, word in enumerate(words):
        if i:
            out.append(SPACE)
        out.extend(word)
    return out


def read_sentences(paths: Sequence[str | Path], kaldi: bool = False,
                   unit: LmUnit = "word") -> Iterator[list[str]]:
    """Sentences of ``paths`` as lists of LM units; empty lines are skipped."""
    for path in paths:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise LMError(f"{path}: text file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise LMError(f"{path}: cannot read as UTF-8 text ({exc})") from None
        for lineno, line in enumerate(lines, 1):
            words = line.split()
            if kaldi:
                words = words[1:]
            for word in words:
                if word in (BOS, EOS):
                    raise LMError(f"{path}:{lineno}: {word} in the text; give plain sentences "
                                  "(the markers are added)")
            if words:
                yield char_units(words) if unit == "char" else words


def build_lm(texts: Sequence[str | Path], order: int, arpa: str | Path, *, kaldi: bool = False,
             unit: LmUnit = "word", estimator: Estimator = "auto", binary: str | Path | None = None,
             memory: str = "10%") -> Path:
    """Estimate an ARPA model of ``order`` (and a KenLM binary when ``binary`` is given).

    ``estimator="auto"`` uses lmplz when it is installed, else the built-in estimator (same
    method, same probabilities; see :mod:`asr.lm.estimate`).
    """
    if order < 1:
        raise LMError(f"--order {order}: give 1 or more")
    arpa = Path(arpa)
    if estimator == "auto":
        estimator = "kenlm" if have_kenlm() else "builtin"
        if estimator == "builtin":
            log.info("KenLM's lmplz is not installed (tools/install_kenlm.sh builds it); "
                     "using the built-in Kneser-Ney estimator")
    sentences = list(read_sentences(texts, kaldi, unit))
    if not sentences:
        raise LMError(f"{', '.join(map(str, texts))}: no sentences to build a language model from")
    if estimator == "kenlm":
        with tempfile.TemporaryDirectory(prefix="asr-lm.") as tmp:
            corpus = Path(tmp) / "corpus.txt"
            corpus.write_text("".join(" ".join(s) + "\n" for s in sentences), encoding="utf-8")
            lmplz(corpus, order, arpa, memory=memory)
    elif estimator == "builtin":
        atomic_write_text(arpa, format_arpa(estimate_kneser_ney(sentences, order)))
    else:
        raise LMError(f"unknown estimator {estimator!r} (expected auto, kenlm or builtin)")
    lm = read_arpa(arpa)  # validates what was written
    log.info("%s: %d-gram %s LM, %d units, %s n-grams (%s, %d sentences)", arpa, lm.order, unit,
             len(lm.vocab), "/".join(str(len(t)) for t in lm.probs), estimator, len(sentences))
    if binary is not None:
        build_binary(arpa, binary)
        log.info("%s: KenLM binary", binary)
    return arpa
