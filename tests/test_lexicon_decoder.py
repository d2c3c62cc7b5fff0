"""asr.decode.lexicon: flashlight-text through torchaudio with a lexicon and a word LM (ARPA
from the built-in estimator, or a KenLM binary), on constructed posteriors; ``asr decode``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.cli import main as asr_main
from asr.decode import DecoderError, build_decoder
from asr.decode.lexicon import LexiconDecoder, read_lexicon, write_lexicon
from asr.lm import estimate_kneser_ney, format_arpa
from asr.lm.kenlm import build_binary, have_kenlm
from asr.text import Tokenizer

TOKENS = Tokenizer.build(["ab ac ba"])  # <blank> <unk> <space> a b c


def test_flashlight_decoder_is_importable() -> None:
    from torchaudio.models.decoder import ctc_decoder  # noqa: F401 - the import is the test


def spell(text: str, ambiguous: dict[int, dict[str, float]] | None = None) -> torch.Tensor:
    """``(1, frames, vocab)`` log-posteriors: each token of ``text`` for two frames, a blank
    after each; ``ambiguous[i]`` replaces the i-th token's distribution."""
    rows = []
    for i, token in enumerate(TOKENS.encode(text)):
        dist = (ambiguous or {}).get(i, {TOKENS.tokens[token]: 0.8})
        for _ in range(2):
            row = np.full(len(TOKENS), 1e-4)
            for sym, p in dist.items():
                row[TOKENS.index[sym]] = p
            rows.append(row / row.sum())
        blank = np.full(len(TOKENS), 1e-4)
        blank[0] = 1.0
        rows.append(blank / blank.sum())
    return torch.tensor(np.log(np.array(rows)), dtype=torch.float32)[None]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    lexicon = write_lexicon(tmp_path / "lexicon.txt", ["ab", "ac", "ba"])
    lm = tmp_path / "lm.arpa"
    lm.write_text(format_arpa(estimate_kneser_ney([["ac"]] * 20 + [["ab"]] + [["ba"]] * 5, 2)))
    return lexicon, lm


def best_words(decoder, log_probs: torch.Tensor) -> list[str]:
    (hyps,) = decoder.decode(log_probs, torch.tensor([log_probs.shape[1]]))
    return hyps[0].words


def test_lexicon_file_format(files) -> None:
    lexicon, _ = files
    assert lexicon.read_text() == "ab a b <space>\nac a c <space>\nba b a <space>\n"
    assert read_lexicon(lexicon, TOKENS) == {"ab": [["a", "b", "<space>"]], "ac": [["a", "c", "<space>"]],
                                              "ba": [["b", "a", "<space>"]]}


def test_words_outside_the_lexicon_cannot_be_produced(files) -> None:
    lexicon, _ = files
    log_probs = spell("ba ab", ambiguous={0: {"c": 0.5, "b": 0.4}})  # "ca" acoustically
    free = build_decoder("beam", TOKENS, beam_size=8)
    assert TOKENS.decode(free.decode(log_probs, torch.tensor([log_probs.shape[1]]))[0][0].tokens) == "ca ab"
    decoder = LexiconDecoder(TOKENS, lexicon, beam_size=8)
    assert best_words(decoder, log_probs) == ["ba", "ab"]


def _without_closing_frame(decoder: LexiconDecoder) -> LexiconDecoder:
    decoder.close_utterance = False
    return decoder


def test_the_last_word_survives_without_a_final_boundary(files) -> None:
    """The model emits <space> between words only. Where blank is likely in the last word's
    frames (as it is in real posteriors), flashlight alone keeps the hypotheses whose last
    spelling is complete: the last word is dropped, a one-word utterance comes out empty. The
    closing boundary frame keeps them, at the same acoustic score."""
    lexicon, _ = files
    soft = {"<blank>": 0.35}
    two = spell("ba ab", ambiguous={3: {"a": 0.6, **soft}, 4: {"b": 0.6, **soft}})
    one = spell("ab", ambiguous={0: {"a": 0.6, **soft}, 1: {"b": 0.6, **soft}})
    assert best_words(_without_closing_frame(LexiconDecoder(TOKENS, lexicon, beam_size=8)), two) == ["ba"]
    assert best_words(_without_closing_frame(LexiconDecoder(TOKENS, lexicon, beam_size=8)), one) == []
    decoder = LexiconDecoder(TOKENS, lexicon, beam_size=8)
    assert best_words(decoder, two) == ["ba", "ab"]
    assert best_words(decoder, one) == ["ab"]
    # The closing frame costs nothing: the score is the best path of the emitted tokens.
    from asr.decode.forced_align import best_path_log_prob

    (hyps,) = decoder.decode(two, torch.tensor([two.shape[1]]))
    assert hyps[0].am_score == pytest.approx(best_path_log_prob(two[0], hyps[0].tokens), abs=1e-4)


def test_padded_batches_close_each_utterance_at_its_own_length(files) -> None:
    lexicon, _ = files
    soft = {"<blank>": 0.35}
    short = spell("ab", ambiguous={1: {"b": 0.6, **soft}})
    long = spell("ba ab ac", ambiguous={7: {"c": 0.6, **soft}})
    batch = torch.full((2, long.shape[1], len(TOKENS)), -1.0e4)
    batch[0, : short.shape[1]] = short[0]
    batch[1] = long[0]
    decoder = LexiconDecoder(TOKENS, lexicon, beam_size=8)
    hyps = decoder.decode(batch, torch.tensor([short.shape[1], long.shape[1]]))
    assert [h[0].words for h in hyps] == [["ab"], ["ba", "ab", "ac"]]


def test_lm_moves_the_choice_and_scores_split(files) -> None:
    lexicon, lm = files
    log_probs = spell("ab", ambiguous={1: {"b": 0.5, "c": 0.4}})
    assert best_words(LexiconDecoder(TOKENS, lexicon, lm, lm_weight=0.01, beam_size=8), log_probs) == ["ab"]
    decoder = LexiconDecoder(TOKENS, lexicon, lm, lm_weight=1.0, beam_size=8, nbest=2)
    (hyps,) = decoder.decode(log_probs, torch.tensor([log_probs.shape[1]]))
    assert hyps[0].words == ["ac"] and hyps[1].words == ["ab"]
    assert hyps[0].score >= hyps[1].score
    for h in hyps:
        assert h.am_score + h.lm_score == pytest.approx(h.score, abs=1e-4)
        assert TOKENS.decode(h.tokens) == " ".join(h.words)
    # lm_weight weighs natural-log probabilities, as the beam decoder's does: the LM share of
    # the score is lm_weight * ln P(words, </s>) (word score 0).
    from asr.lm import read_arpa

    model = read_arpa(lm)
    for h in hyps:
        assert h.lm_score == pytest.approx(math.log(10) * model.sentence_log10(h.words), abs=1e-3)
    assert hyps[0].am_score < hyps[1].am_score  # the acoustics preferred "ab"


def test_loading_an_arpa_lm_prints_nothing(files, capfd) -> None:
    """KenLM writes its ARPA loading progress to file descriptor 2; transcribe -q stays quiet."""
    lexicon, lm = files
    capfd.readouterr()
    LexiconDecoder(TOKENS, lexicon, lm, beam_size=4)
    assert capfd.readouterr().err == ""
    print("still here", file=sys.stderr)  # descriptor 2 is restored
    assert capfd.readouterr().err == "still here\n"


@pytest.mark.skipif(not have_kenlm(), reason="KenLM's build_binary is not installed (tools/install_kenlm.sh)")
def test_kenlm_binary_gives_the_same_result(files, tmp_path: Path) -> None:
    lexicon, lm = files
    binary = build_binary(lm, tmp_path / "lm.bin")
    log_probs = spell("ab ba", ambiguous={1: {"b": 0.5, "c": 0.4}})
    a = LexiconDecoder(TOKENS, lexicon, lm, lm_weight=1.0).decode(log_probs, torch.tensor([log_probs.shape[1]]))
    b = LexiconDecoder(TOKENS, lexicon, binary, lm_weight=1.0).decode(log_probs, torch.tensor([log_probs.shape[1]]))
    assert a[0][0].words == b[0][0].words == ["ac", "ba"]
    assert a[0][0].score == pytest.approx(b[0][0].score, abs=1e-3)


def test_errors_are_one_line(files, tmp_path: Path) -> None:
    lexicon, lm = files
    bad = tmp_path / "bad.txt"
    bad.write_text("ab a b <space>\nxy x y <space>\n")
    with pytest.raises(DecoderError, match=r"bad.txt:2: token 'x' of 'xy' is not one of the model's"):
        LexiconDecoder(TOKENS, bad)
    with pytest.raises(DecoderError, match="nope.arpa: language model not found"):
        LexiconDecoder(TOKENS, lexicon, tmp_path / "nope.arpa")
    with pytest.raises(DecoderError, match="tokens are words"):
        LexiconDecoder(Tokenizer.build(["yes no"], unit="word"), lexicon)
    with pytest.raises(DecoderError, match="lexicon not found"):
        LexiconDecoder(TOKENS, tmp_path / "none.txt")


def test_decode_cli_with_lexicon_and_lm(tmp_path: Path, files) -> None:
    from asr.config import load_config
    from asr.data.datadir import write_data_dir
    from asr.data.utterance import Utterance
    from asr.model import build_model
    from asr.modeldir import save_model_dir

    lexicon, lm = files
    torch.manual_seed(0)
    config = load_config(overrides=["features.sample_rate=8000", "features.n_mels=10",
                                    "model.num_layers=1", "model.hidden_size=8",
                                    "model.frame_stack=3", "features.cmvn=utterance"])
    model = save_model_dir(tmp_path / "model", build_model(config.model, config.features, len(TOKENS)),
                           config, TOKENS)
    utts = []
    for i, text in enumerate(["ab", "ac ba"]):
        wav = tmp_path / f"u{i}.wav"
        t = np.arange(int(0.8 * 8000)) / 8000
        sf.write(wav, (0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t)).astype(np.float32), 8000)
        utts.append(Utterance(f"s-u{i}", str(wav), text, "s"))
    data = write_data_dir(tmp_path / "data", utts).path
    out = tmp_path / "out"
    assert asr_main.main(["decode", "--model", str(model), "--data", str(data), "--out", str(out),
                          "--decoder", "lexicon", "--lexicon", str(lexicon), "--lm", str(lm),
                          "--beam-size", "4"]) == 0
    words = {w for line in (out / "text").read_text().splitlines() for w in line.split()[1:]}
    assert words <= {"ab", "ac", "ba"}  # whatever an untrained model hears, it is a lexicon word
    # Words whose spelling reads otherwise (as a phone model's do): the word times and the ctm
    # name the lexicon's words, not their spellings.
    named = tmp_path / "named.txt"
    named.write_text("AB a b <space>\nAC a c <space>\nBA b a <space>\n")
    named_lm = tmp_path / "named.arpa"
    named_lm.write_text(lm.read_text().replace("ab", "AB").replace("ac", "AC").replace("ba", "BA"))
    out2 = tmp_path / "out2"
    assert asr_main.main(["decode", "--model", str(model), "--data", str(data), "--out", str(out2),
                          "--decoder", "lexicon", "--lexicon", str(named), "--lm", str(named_lm),
                          "--beam-size", "4"]) == 0
    texts = {line.split()[0]: line.split()[1:] for line in (out2 / "text").read_text().splitlines()}
    ctm: dict[str, list[str]] = {}
    for line in (out2 / "ctm").read_text().splitlines():
        ctm.setdefault(line.split()[0], []).append(line.split()[4])
    assert any(texts.values()) and {u: w for u, w in texts.items() if w} == ctm
    summary = json.loads((out / "score.json").read_text())
    assert summary["decoder"] == "lexicon" and summary["lexicon"] == str(lexicon)
