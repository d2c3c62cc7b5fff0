"""asr.scoring.normalize: nothing changes under `none`; `basic` does exactly what it says."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asr.scoring import score
from asr.scoring.normalize import describe, normalize_words


def test_none_only_splits_on_whitespace() -> None:
    assert normalize_words("  Hello,\tWorld!  x ", "none") == ["Hello,", "World!", "x"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("STRASSE Straße", ["strasse", "strasse"]),  # casefold, not lower()
        ("don't DON’T", ["don't", "don't"]),  # a word-internal apostrophe stays, as '
        ("x-ray -- well-", ["x-ray", "well"]),  # hyphens only between letters/digits
        ("'tis \"quoted\" (paren) [noise] {x}", ["tis", "quoted", "paren", "noise", "x"]),
        ("… , . ! ?", []),  # words that were only punctuation disappear
        ("<unk> $5 a+b 50%", ["<unk>", "$5", "a+b", "50"]),  # symbols (S*) stay; P* go
        ("3.5 1,000 end. 2,", ["3.5", "1,000", "end", "2"]),  # . and , inside numbers stay
        ("l'été «oui»", ["l'été", "oui"]),
    ],
)
def test_basic(text: str, words: list[str]) -> None:
    assert normalize_words(text, "basic") == words


def test_unknown_normalisation() -> None:
    with pytest.raises(ValueError, match="basic"):
        normalize_words("a", "fancy")


@given(st.text(max_size=40))
def test_basic_is_idempotent(text: str) -> None:
    once = normalize_words(text, "basic")
    assert normalize_words(" ".join(once), "basic") == once


def test_report_names_the_normalisation_and_scores_after_it() -> None:
    refs = {"u": "Hello, World!"}
    hyps = {"u": "hello world"}
    strict = score(refs, hyps)
    assert strict.wer.subs == 2 and strict.notes()[0] == f"# normalisation: {describe('none')}"
    assert "exactly as written" in strict.notes()[0]
    loose = score(refs, hyps, normalize="basic")
    assert loose.wer.errors == 0 and loose.cer.errors == 0
    assert loose.notes()[0].startswith("# normalisation: basic (case folded, punctuation stripped")
    assert loose.to_full_dict()["normalize"] == "basic"
