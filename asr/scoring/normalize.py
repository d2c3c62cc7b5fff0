"""Explicit text normalisation before scoring; the report always says which one was used.

``none``
    Words are compared exactly as written; only whitespace separates them (runs of spaces,
    tabs and leading/trailing whitespace do not matter).
``basic``
    Applied to every word, in this order:

    1. case folding with Python's ``str.casefold`` (``"Hello"`` -> ``"hello"``,
       ``"Straße"`` -> ``"strasse"``);
    2. every character of a Unicode punctuation category (``P*``: ``. , ; : ! ? " ( ) [ ]
       { } - _ … « » % & * @ # /`` and the like) is deleted, except an apostrophe (``'`` or
       ``’``, written ``'``) or a hyphen with a letter or digit on both sides (``don't``,
       ``x-ray`` stay whole; ``'tis`` becomes ``tis``), and a period or comma with a digit on
       both sides (``3.5``, ``1,000``);
    3. a word left empty is dropped.

    Nothing else changes: symbols (Unicode ``S*``: ``$ + < > = ^ | ~``) and digits are kept, so
    ``<unk>`` stays ``<unk>`` while ``[noise]`` becomes ``noise``; numbers are not spelt out.
"""

from __future__ import annotations

import unicodedata

NORMALIZATIONS = ("none", "basic")

_DESCRIPTIONS = {
    "none": "none (words compared exactly as written)",
    "basic": "basic (case folded, punctuation stripped except word-internal ' and - and . , in numbers)",
}

_APOSTROPHES = {"'", "\u2019"}
_HYPHENS = {"-", "\u2010", "\u2011"}


def describe(name: str) -> str:
    """One line naming the normalisation and what it does, for reports."""
    return _DESCRIPTIONS[name]


def _strip_punctuation(word: str) -> str:
    kept = []
    last = len(word) - 1
    for i, ch in enumerate(word):
        if not unicodedata.category(ch).startswith("P"):
            kept.append(ch)
            continue
        inside = 0 < i < last and word[i - 1].isalnum() and word[i + 1].isalnum()
        if inside and ch in _APOSTROPHES:
            kept.append("'")
        elif inside and ch in _HYPHENS:
            kept.append("-")
        elif inside and ch in ".," and word[i - 1].isdigit() and word[i + 1].isdigit():
            kept.append(ch)
    return "".join(kept)


def normalize_words(text: str, name: str = "none") -> list[str]:
    """``text`` split into words and normalised as ``name`` says (see the module docstring)."""
    if name == "none":
        return text.split()
    if name != "basic":
        raise ValueError(f"unknown normalisation {name!r}; choose from {', '.join(NORMALIZATIONS)}")
    words = text.casefold().split()
    out = []
    for word in words:
        # Most words hold no punctuation at all: skip the per-character walk for them.
        if not word.isalnum():
            word = _strip_punctuation(word)
        if word:
            out.append(word)
    return out
