"""asr.text.tokenizer: character ids, <space>, <unk>, tokens.txt."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.errors import ModelError
from asr.text import BLANK, SPACE, UNK, Tokenizer


@pytest.fixture
def tokenizer() -> Tokenizer:
    return Tokenizer.build(["yes no", "on the go"])


def test_build_is_sorted_with_specials_first(tokenizer: Tokenizer) -> None:
    assert tokenizer.tokens == [BLANK, UNK, SPACE, "e", "g", "h", "n", "o", "s", "t", "y"]
    assert len(tokenizer) == 11
    assert tokenizer.unk_id == 1
    # The same texts in another order give the same ids.
    assert Tokenizer.build(["on the go", "no yes"]).tokens == tokenizer.tokens


def test_encode_uses_space_token(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("yes no")
    assert ids == [10, 3, 8, 2, 6, 7]
    assert tokenizer.decode(ids) == "yes no"
    # Extra whitespace collapses to one <space>.
    assert tokenizer.encode("  yes   no ") == ids


def test_unknown_characters_map_to_unk(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("yex")
    assert ids == [10, 3, 1]
    assert tokenizer.decode(ids) == f"ye{UNK}"


def test_decode_skips_blanks_and_trims_spaces(tokenizer: Tokenizer) -> None:
    assert tokenizer.decode([0, 2, 10, 0, 3, 8, 2, 2, 6, 7, 2, 0]) == "yes no"
    assert tokenizer.decode([]) == ""


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet="abcxyz'", min_size=1, max_size=6), min_size=1, max_size=5))
def test_round_trip(words: list[str]) -> None:
    text = " ".join(words)
    tok = Tokenizer.build([text])
    ids = tok.encode(text)
    assert tok.unk_id not in ids and 0 not in ids
    assert tok.decode(ids) == text


def test_save_load(tmp_path: Path, tokenizer: Tokenizer) -> None:
    path = tmp_path / "tokens.txt"
    tokenizer.save(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:4] == ["<blank> 0", "<unk> 1", "<space> 2", "e 3"]
    assert len(lines) == len(tokenizer)
    assert Tokenizer.load(path).tokens == tokenizer.tokens


def test_non_ascii_round_trip(tmp_path: Path) -> None:
    tok = Tokenizer.build(["ça va", "שלום"])
    tok.save(tmp_path / "tokens.txt")
    loaded = Tokenizer.load(tmp_path / "tokens.txt")
    assert loaded.decode(loaded.encode("ça שלום")) == "ça שלום"


@pytest.mark.parametrize(
    ("content", "lineno"),
    [
        ("<blank> 0\n<unk> x\n", 2),  # id not a number
        ("<blank> 0\n<unk> 2\n", 2),  # ids out of order
        ("<blank> 0\n<unk> 1\n<space>\n", 3),  # missing id
        ("<blank> 0\n<unk> 1 extra\n", 2),  # too many fields
        ("<blank> 0\n\n<unk> 1\n", 2),  # blank line
    ],
)
def test_malformed_tokens_file_names_file_and_line(
    tmp_path: Path, content: str, lineno: int
) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelError, match=f"tokens.txt:{lineno}:"):
        Tokenizer.load(path)


def test_invalid_token_lists(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text("a 0\n<unk> 1\nb 2\n", encoding="utf-8")
    with pytest.raises(ModelError, match="tokens.txt: token list must start with <blank>"):
        Tokenizer.load(path)
    with pytest.raises(ModelError, match="tokens.txt"):
        Tokenizer.load(tmp_path / "missing" / "tokens.txt")
    with pytest.raises(ValueError, match="duplicates"):
        Tokenizer([BLANK, UNK, SPACE, "a", "a"])


def test_word_unit_has_one_token_per_word(tmp_path) -> None:
    tok = Tokenizer.build(["YES NO NO", "NO YES"], unit="word")
    assert tok.tokens == [BLANK, UNK, "NO", "YES"]
    assert tok.encode("NO YES  YES") == [2, 3, 3]
    assert tok.encode("MAYBE") == [tok.unk_id]
    assert tok.decode([0, 3, 0, 2]) == "YES NO"
    assert tok.word_groups([3, 2, 2]) == [[0], [1], [2]]
    tok.save(tmp_path / "tokens.txt")
    assert Tokenizer.load(tmp_path / "tokens.txt", "word").tokens == tok.tokens


def test_char_word_groups_split_at_space(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("yes no")
    assert tokenizer.word_groups(ids) == [[0, 1, 2], [4, 5]]
    assert tokenizer.word_groups([]) == []


def test_char_token_list_without_space_is_rejected(tmp_path) -> None:
    (tmp_path / "tokens.txt").write_text("<blank> 0\n<unk> 1\nYES 2\n")
    with pytest.raises(ModelError, match="must contain <space>"):
        Tokenizer.load(tmp_path / "tokens.txt", "char")
    assert Tokenizer.load(tmp_path / "tokens.txt", "word").tokens[2] == "YES"
