"""Texts to the flat integer unit arrays that :func:`asr.scoring.edit_distance.align_pairs` aligns.

Words are split on whitespace and numbered through one vocabulary shared by references and
hypotheses; characters are their Unicode code points, with a single space standing between
words (so a missing or extra word boundary is a character error).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np


@dataclass
class Units:
    """Sequences of unit ids given flat: sequence ``i`` is ``ids[offsets[i] : offsets[i + 1]]``."""

    ids: np.ndarray  # (total,) int64 word ids or uint32 code points
    offsets: np.ndarray  # (sequences + 1,) int64

    def lengths(self) -> np.ndarray:
        """``(sequences,)`` int64: the number of units in each sequence."""
        return np.diff(self.offsets)


def _offsets(lengths: list[int]) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def encode_words(
    refs: list[list[str]], hyps: list[list[str]]
) -> tuple[Units, Units, list[str]]:
    """Number the words of ``refs`` and ``hyps`` (lists of word lists) with one vocabulary.

    Returns the reference units, the hypothesis units and the vocabulary (``vocab[id]`` is the
    word).
    """
    flat_ref = list(chain.from_iterable(refs))
    flat_hyp = list(chain.from_iterable(hyps))
    # dict.fromkeys and map() keep the per-word work inside C; only distinct words are numbered
    # in Python.
    vocab = list(dict.fromkeys(chain(flat_ref, flat_hyp)))
    index = {w: i for i, w in enumerate(vocab)}

    def units(flat: list[str], texts: list[list[str]]) -> Units:
        ids = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=len(flat))
        return Units(ids, _offsets(list(map(len, texts))))

    return units(flat_ref, refs), units(flat_hyp, hyps), vocab


def encode_chars(texts: list[list[str]]) -> Units:
    """Characters of each word list joined by single spaces, as code points."""
    joined = [" ".join(words) for words in texts]
    # Encoding everything at once keeps the per-character work inside C.
    ids = np.frombuffer("".join(joined).encode("utf-32-le"), dtype=np.uint32)
    return Units(ids, _offsets(list(map(len, joined))))
