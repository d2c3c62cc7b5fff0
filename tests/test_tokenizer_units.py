"""asr.text: phone units (text phones or a CMU-dict lexicon) and sentencepiece BPE units,
their save/load through tokens.txt (+ bpe.model) and through a model directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.config import TokenizerConfig, load_config
from asr.errors import AsrError, ModelError
from asr.model import build_model
from asr.modeldir import load_model_dir, save_model_dir
from asr.text import (
    BLANK,
    SPACE,
    UNK,
    Lexicon,
    LexiconError,
    Tokenizer,
    build_tokenizer,
    load_tokenizer,
)
from asr.text.bpe import BPE_MODEL, BpeError
from asr.text.lexicon import strip_stress, write_decoder_lexicon

CMUDICT = """\
;;; a comment line as CMUdict has them
A  AH0
A(2)  EY1
GO  G OW1
NO  N OW1
NO(2)  N AH0
YES  Y EH1 S
"""

LIBRI = [
    "HE HOPED THERE WOULD BE STEW FOR DINNER",
    "TURNIPS AND CARROTS AND BRUISED POTATOES AND FAT MUTTON PIECES",
    "STUFF IT INTO YOU HIS BELLY COUNSELLED HIM",
    "AFTER EARLY NIGHTFALL THE YELLOW LAMPS WOULD LIGHT UP HERE AND THERE",
    "THE SQUALID QUARTER OF THE BROTHELS",
    "HELLO BERTIE ANY GOOD IN YOUR MIND",
] * 3


@dataclass
class Utt:
    utt_id: str
    text: str


@pytest.fixture
def lexicon_file(tmp_path: Path) -> Path:
    path = tmp_path / "lexicon.dic"
    path.write_text(CMUDICT, encoding="utf-8")
    return path


def test_strip_stress() -> None:
    assert [strip_stress(p) for p in ["AH0", "EY1", "OW2", "S", "h#", "ax-h"]] == [
        "AH", "EY", "OW", "S", "h#", "ax-h"]


def test_lexicon_keeps_first_pronunciation(lexicon_file: Path) -> None:
    lex = Lexicon.read(lexicon_file)
    assert lex.get("A") == ["AH"] and lex.get("NO") == ["N", "OW"]
    assert lex.get("no") == ["N", "OW"]  # lower-case transcript, upper-case dictionary
    assert Lexicon.read(lexicon_file, keep_stress=True).get("YES") == ["Y", "EH1", "S"]
    assert len(lex) == 4 and lex.phones() == {"AH", "G", "OW", "N", "Y", "EH", "S"}


def test_lexicon_errors_name_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match=r"nope.dic: lexicon not found"):
        Lexicon.read(tmp_path / "nope.dic")
    bad = tmp_path / "bad.dic"
    bad.write_text("YES Y EH S\nNOPHONES\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"bad.dic:2: expected 'WORD PH1 PH2 ...'"):
        Lexicon.read(bad)
    bad.write_text(";;; only comments\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="bad.dic: the lexicon is empty"):
        Lexicon.read(bad)


def test_phone_units_from_text() -> None:
    # TIMIT style: the transcript is the phone sequence.
    tok = Tokenizer.build(["h# sh iy hv ae dcl h#", "h# dh ax h#"], "phone")
    assert tok.tokens[:2] == [BLANK, UNK] and SPACE not in tok.tokens
    assert tok.tokens[2:] == sorted(["h#", "sh", "iy", "hv", "ae", "dcl", "dh", "ax"])
    ids = tok.encode("h# sh iy q h#")
    assert ids[3] == tok.unk_id and 0 not in ids
    assert tok.decode(ids) == f"h# sh iy {UNK} h#"
    assert tok.word_groups(ids) == [[0], [1], [2], [3], [4]]  # each phone scored as a word


def test_phone_units_through_lexicon(lexicon_file: Path) -> None:
    lex = Lexicon.read(lexicon_file)
    tok = Tokenizer.build(["YES NO", "GO"], "phone", lexicon=lex)
    assert tok.tokens == [BLANK, UNK, "EH", "G", "N", "OW", "S", "Y"]
    assert tok.decode(tok.encode("YES GO")) == "Y EH S G OW"
    with pytest.raises(LexiconError, match=r"utterance u7: word 'MAYBE' is not in the lexicon .*lexicon.dic"):
        tok.encode("YES MAYBE", utt_id="u7")


def test_phone_word_boundary_feeds_the_lexicon_decoder(lexicon_file: Path, tmp_path: Path) -> None:
    config = TokenizerConfig(type="phone", lexicon=str(lexicon_file), word_boundary=True)
    tok = build_tokenizer(config, ["YES NO", "GO A"])
    assert tok.tokens[:3] == [BLANK, UNK, SPACE] and "AH" in tok.tokens
    ids = tok.encode("YES NO")
    assert [tok.tokens[i] for i in ids] == ["Y", "EH", "S", SPACE, "N", "OW"]
    assert tok.decode(ids) == "Y EH S N OW"
    assert tok.word_groups(ids) == [[0, 1, 2], [4, 5]]
    spelled = write_decoder_lexicon(tmp_path / "lexicon.txt", tok.lexicon, ["YES", "NO", "ZZZ"], SPACE)
    assert spelled.read_text().splitlines() == ["NO N OW <space>", "YES Y EH S <space>"]

    from asr.decode.lexicon import LexiconDecoder

    # Build-time checks of the decoder accept the phone spelling; emissions that spell
    # Y EH S <space> N OW decode to the words.
    decoder = LexiconDecoder(tok, spelled, beam_size=8)
    path = ["Y", BLANK, "EH", "S", SPACE, "N", BLANK, "OW", BLANK]
    emissions = torch.full((1, len(path), len(tok)), -10.0)
    for t, symbol in enumerate(path):
        emissions[0, t, tok.index[symbol]] = 0.0
    hyp = decoder.decode(emissions.log_softmax(-1), torch.tensor([len(path)]))[0][0]
    assert hyp.words == ["YES", "NO"]


def test_check_names_the_utterance_and_counts_missing_words(lexicon_file: Path) -> None:
    config = TokenizerConfig(type="phone", lexicon=str(lexicon_file))
    tok = build_tokenizer(config, ["YES"])
    tok.check([Utt("a", "YES NO")], "data/train/text")  # all known: no error
    utts = [Utt("a", "YES"), Utt("b", "NO MAYBE"), Utt("c", "PERHAPS MAYBE")]
    with pytest.raises(LexiconError) as info:
        tok.check(utts, "data/train/text")
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, AsrError)
    assert message.startswith("data/train/text: utterance b: word 'MAYBE' is not in the lexicon")
    assert "2 words missing in all: MAYBE PERHAPS" in message


def test_phone_save_load_with_and_without_lexicon(lexicon_file: Path, tmp_path: Path) -> None:
    config = TokenizerConfig(type="phone", lexicon=str(lexicon_file), word_boundary=True)
    tok = build_tokenizer(config, ["YES NO GO"])
    tok.save(tmp_path / "tokens.txt")
    resumed = load_tokenizer(tmp_path / "tokens.txt", config)
    assert resumed.tokens == tok.tokens and resumed.encode("GO YES") == tok.encode("GO YES")
    plain = Tokenizer.load(tmp_path / "tokens.txt", "phone")  # a model directory: no lexicon
    assert plain.space_id == tok.space_id and plain.decode(tok.encode("NO GO")) == "N OW G OW"


def test_bpe_round_trip_and_word_groups(tmp_path: Path) -> None:
    tok = build_tokenizer(TokenizerConfig(type="bpe", bpe_vocab_size=60), LIBRI)
    assert len(tok) == 61 and tok.tokens[0] == BLANK and tok.tokens[1] == UNK and tok.unk_id == 1
    for text in LIBRI[:6]:
        ids = tok.encode(text)
        assert 0 not in ids and tok.unk_id not in ids
        assert tok.decode(ids) == text
        # Fewer pieces than characters: BPE merges were learnt.
        assert len(ids) < len(text.replace(" ", ""))
        groups = tok.word_groups(ids)
        assert [tok.decode([ids[p] for p in g]) for g in groups] == text.split()
    # Blanks are skipped when decoding.
    ids = tok.encode("HE HOPED")
    assert tok.decode([0, *ids[:1], 0, 0, *ids[1:], 0]) == "HE HOPED"
    # Characters never seen in training become <unk>.
    assert tok.unk_id in tok.encode("HE HOPED Q7")
    # Training is deterministic.
    again = build_tokenizer(TokenizerConfig(type="bpe", bpe_vocab_size=60), LIBRI)
    assert again.tokens == tok.tokens and again.bpe_model == tok.bpe_model


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(sorted({w for t in LIBRI for w in t.split()})), min_size=1, max_size=8))
def test_bpe_round_trip_property(words: list[str]) -> None:
    tok = _bpe()
    text = " ".join(words)
    assert tok.decode(tok.encode(text)) == text


_BPE: list[Tokenizer] = []


def _bpe() -> Tokenizer:
    if not _BPE:
        _BPE.append(build_tokenizer(TokenizerConfig(type="bpe", bpe_vocab_size=50), LIBRI))
    return _BPE[0]


def test_bpe_save_load_and_errors(tmp_path: Path) -> None:
    tok = _bpe()
    tok.save(tmp_path / "tokens.txt")
    assert (tmp_path / BPE_MODEL).read_bytes() == tok.bpe_model
    loaded = Tokenizer.load(tmp_path / "tokens.txt", "bpe")
    assert loaded.tokens == tok.tokens and loaded.encode(LIBRI[0]) == tok.encode(LIBRI[0])
    # tokens.txt that does not match the model.
    lines = (tmp_path / "tokens.txt").read_text().splitlines()
    lines[5] = f"BOGUS {5}"
    (tmp_path / "tokens.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(ModelError, match="tokens.txt: the token list does not match the BPE model"):
        Tokenizer.load(tmp_path / "tokens.txt", "bpe")
    (tmp_path / BPE_MODEL).write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"bpe.model: not a sentencepiece model"):
        Tokenizer.load(tmp_path / "tokens.txt", "bpe")
    (tmp_path / BPE_MODEL).unlink()
    with pytest.raises(ModelError, match=r"bpe.model: BPE model missing"):
        Tokenizer.load(tmp_path / "tokens.txt", "bpe")


def test_bpe_vocab_too_large_is_one_line() -> None:
    with pytest.raises(BpeError, match="lower tokenizer.bpe_vocab_size") as info:
        build_tokenizer(TokenizerConfig(type="bpe", bpe_vocab_size=5000), ["A TINY TEXT"])
    assert "\n" not in str(info.value)
    with pytest.raises(BpeError, match="bpe_vocab_size=3 cannot hold every character.*raise it to at least"):
        build_tokenizer(TokenizerConfig(type="bpe", bpe_vocab_size=3), ["ABCDEF FED"])


@pytest.mark.parametrize("unit", ["bpe", "phone"])
def test_model_directory_restores_the_tokenizer(tmp_path: Path, lexicon_file: Path, unit: str) -> None:
    overrides = ["features.n_mels=10", "model.num_layers=1", "model.hidden_size=4",
                 f"tokenizer.type={unit}", "tokenizer.bpe_vocab_size=50",
                 f"tokenizer.lexicon={lexicon_file}", "tokenizer.word_boundary=true"]
    config = load_config(overrides=overrides)
    texts = LIBRI if unit == "bpe" else ["YES NO", "GO"]
    tok = build_tokenizer(config.tokenizer, texts)
    model = build_model(config.model, config.features, len(tok))
    path = save_model_dir(tmp_path / "model", model, config, tok)
    lexicon_file.unlink()  # decoding a phone model needs no lexicon
    loaded = load_model_dir(path)
    assert loaded.config.tokenizer.type == unit
    assert loaded.tokenizer.tokens == tok.tokens
    ids = tok.encode(texts[0])
    assert loaded.tokenizer.decode(ids) == tok.decode(ids)
    if unit == "bpe":
        assert (path / BPE_MODEL).is_file() and loaded.tokenizer.encode(texts[1]) == tok.encode(texts[1])


def test_fixed_unit_list(tmp_path: Path, lexicon_file: Path) -> None:
    (tmp_path / "phones.txt").write_text("sh\niy\nh#\nq\nsh\n")
    config = TokenizerConfig(type="phone", units=str(tmp_path / "phones.txt"))
    tok = build_tokenizer(config, ["h# sh h#"])  # the text does not decide the units
    assert tok.tokens == [BLANK, UNK, "sh", "iy", "h#", "q"]
    tok.check([Utt("a", "h# q iy h#")], "data/dev/text")
    with pytest.raises(LexiconError, match=r"data/dev/text: utterance b: phone 'zz' is not one of the model's units"):
        tok.check([Utt("a", "h#"), Utt("b", "h# zz")], "data/dev/text")
    boundary = TokenizerConfig(type="phone", units=str(tmp_path / "phones.txt"),
                               lexicon=str(lexicon_file), word_boundary=True)
    assert build_tokenizer(boundary, []).tokens[:3] == [BLANK, UNK, SPACE]
    from asr.errors import ConfigError

    with pytest.raises(ConfigError, match="nope.txt: cannot read the unit list"):
        build_tokenizer(TokenizerConfig(type="phone", units=str(tmp_path / "nope.txt")), [])


def test_bpe_lexicon_decoding(tmp_path: Path) -> None:
    from asr.decode.lexicon import LexiconDecoder
    from asr.text.spell import spell, write_spelling_lexicon

    tok = _bpe()
    written, skipped = write_spelling_lexicon(tmp_path / "lexicon.txt", tok, ["STEW", "FOR", "DINNER", "ZZ9"])
    assert (written, skipped) == (3, 1)  # '9' is not a piece of the model
    pieces = spell(tok, "DINNER")
    assert pieces is not None and "".join(pieces) == "\u2581DINNER"
    decoder = LexiconDecoder(tok, tmp_path / "lexicon.txt", beam_size=8)
    path = [p for word in ("STEW", "FOR", "DINNER") for p in [*spell(tok, word), BLANK]]
    emissions = torch.full((1, len(path), len(tok)), -10.0)
    for t, symbol in enumerate(path):
        emissions[0, t, tok.index[symbol]] = 0.0
    hyp = decoder.decode(emissions.log_softmax(-1), torch.tensor([len(path)]))[0][0]
    assert hyp.words == ["STEW", "FOR", "DINNER"]
    assert tok.decode(hyp.tokens) == "STEW FOR DINNER"
