"""asr.decode.prefix_beam and fusion: exactness against brute force, beam 1 = greedy, pruning,
LM shallow fusion, n-best lists; the GPU decoder; ``asr decode`` with the beam decoder."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.cli import main as asr_main
from asr.config import load_config
from asr.data.datadir import write_data_dir
from asr.data.utterance import Utterance
from asr.decode import DecoderError, build_decoder, greedy_decode
from asr.decode.fusion import CharFusion, WordFusion, WordTokenFusion
from asr.decode.prefix_beam import PrefixBeamDecoder
from asr.lm import estimate_kneser_ney
from asr.model import build_model
from asr.modeldir import save_model_dir
from asr.text import Tokenizer


def tone(seconds: float, rate: int, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    out, prev = [], None
    for p in path:
        if p != prev and p != blank:
            out.append(p)
        prev = p
    return tuple(out)


def labelling_log_probs(log_probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """log P(labelling) for every labelling of a ``(time, vocab)`` matrix: the sum over all
    alignments, by enumerating every path."""
    time, vocab = log_probs.shape
    lp = log_probs.double().numpy()
    out: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(vocab), repeat=time):
        score = float(lp[np.arange(time), path].sum())
        key = collapse(path)
        out[key] = float(np.logaddexp(out.get(key, -np.inf), score))
    return out


def exhaustive() -> PrefixBeamDecoder:
    return PrefixBeamDecoder(beam_size=200, nbest=5, token_min_logp=-math.inf, beam_threshold=None)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), time=st.integers(1, 6), vocab=st.integers(2, 4),
       sharp=st.floats(0.3, 4.0))
def test_wide_beam_finds_the_most_probable_labelling(seed: int, time: int, vocab: int, sharp: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    log_probs = (torch.randn(time, vocab, generator=gen, dtype=torch.float64) * sharp).log_softmax(-1)
    truth = sorted(labelling_log_probs(log_probs).items(), key=lambda kv: -kv[1])
    (hyps,) = exhaustive().decode(log_probs[None], torch.tensor([time]))
    # The n-best scores are the exact labelling probabilities, in order.
    assert len(hyps) == min(5, len(truth))
    for hyp, (_, expected) in zip(hyps, truth, strict=False):
        assert hyp.score == pytest.approx(expected, abs=1e-9)
        assert hyp.am_score == pytest.approx(expected, abs=1e-9) and hyp.lm_score == 0.0
    best = truth[0][1]
    assert dict(truth)[tuple(hyps[0].tokens)] == pytest.approx(best, abs=1e-9)


def test_labelling_probability_beats_best_path() -> None:
    # The best path is all blank (0.55 ** 3), but "a" collects 0.72 over its 6 alignments.
    probs = torch.tensor([[0.55, 0.45 - 1e-3, 1e-3]] * 3, dtype=torch.float64)
    log_probs = probs.log()
    (greedy,) = greedy_decode(log_probs[None], torch.tensor([3]))
    assert greedy.tokens == []
    (hyps,) = exhaustive().decode(log_probs[None], torch.tensor([3]))
    assert hyps[0].tokens == [1]
    assert hyps[0].score == pytest.approx(max(labelling_log_probs(log_probs).values()), abs=1e-12)


def confident(path: list[int], vocab: int, peaks: list[float], seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    probs = np.zeros((len(path), vocab))
    for t, (token, peak) in enumerate(zip(path, peaks, strict=True)):
        rest = rng.dirichlet(np.ones(vocab - 1)) * (1 - peak)
        probs[t] = np.insert(rest, token, peak)
    return torch.tensor(np.log(probs))


@settings(max_examples=80, deadline=None)
@given(data=st.data(), vocab=st.integers(2, 6), length=st.integers(1, 40))
def test_beam_one_is_greedy_on_confident_posteriors(data, vocab: int, length: int) -> None:
    # When each frame's best token has posterior > 1/sqrt(2), extending by it always outweighs
    # staying, so one beam follows the best path (see the module docstring).
    path = data.draw(st.lists(st.integers(0, vocab - 1), min_size=length, max_size=length))
    peaks = data.draw(st.lists(st.floats(0.72, 0.999), min_size=length, max_size=length))
    log_probs = confident(path, vocab, peaks, data.draw(st.integers(0, 1000)))[None]
    lengths = torch.tensor([length])
    (greedy,) = greedy_decode(log_probs, lengths)
    (hyps,) = PrefixBeamDecoder(beam_size=1, token_min_logp=-math.inf).decode(log_probs, lengths)
    assert hyps[0].tokens == greedy.tokens
    assert hyps[0].frames == greedy.frames


def test_batch_equals_one_at_a_time_and_respects_lengths() -> None:
    torch.manual_seed(0)
    log_probs = (torch.randn(4, 30, 6) * 3).log_softmax(-1)
    lengths = torch.tensor([30, 7, 19, 1])
    decoder = PrefixBeamDecoder(beam_size=8, nbest=3, beam_threshold=None)
    batched = decoder.decode(log_probs, lengths)
    for i in range(4):
        (alone,) = decoder.decode(log_probs[i : i + 1, : lengths[i]], lengths[i : i + 1])
        assert [h.tokens for h in alone] == [h.tokens for h in batched[i]]
        # float64 numpy arithmetic on the same float32 inputs: batching only changes which
        # SIMD lane computes an exp/log (<= 1 ulp), ~30 frames x |score| <~ 100 x 2e-16 ~ 1e-12.
        assert [h.score for h in alone] == pytest.approx([h.score for h in batched[i]], abs=1e-9)
    # n-best: distinct, best first.
    for hyps in batched:
        assert len({tuple(h.tokens) for h in hyps}) == len(hyps)
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_pruning_keeps_the_answer_on_peaked_posteriors() -> None:
    log_probs = confident([0, 1, 1, 0, 2, 0, 3, 3, 3, 0, 1], 5, [0.97] * 11, 3)[None]
    lengths = torch.tensor([11])
    full = exhaustive().decode(log_probs, lengths)[0][0]
    for decoder in (PrefixBeamDecoder(beam_size=4, token_topk=2),
                    PrefixBeamDecoder(beam_size=4, token_min_logp=-3.0, beam_threshold=5.0)):
        pruned = decoder.decode(log_probs, lengths)[0][0]
        assert pruned.tokens == full.tokens == [1, 2, 3, 1]
        # Pruned alignments only take probability away, and little of it here.
        assert full.score - 0.1 < pruned.score <= full.score + 1e-12


def test_empty_input_and_errors() -> None:
    (hyps,) = PrefixBeamDecoder().decode(torch.zeros(1, 5, 4).log_softmax(-1), torch.tensor([0]))
    assert hyps[0].tokens == [] and hyps[0].score == 0.0
    with pytest.raises(DecoderError, match="larger than --beam-size"):
        PrefixBeamDecoder(beam_size=2, nbest=3)


# --- shallow fusion -------------------------------------------------------------------------

TOKENS = Tokenizer.build(["ab ac ba"])  # <blank> <unk> <space> a b c


def spell(text: str, frames_per_token: int = 2, peak: float = 0.8,
          ambiguous: dict[int, dict[str, float]] | None = None) -> torch.Tensor:
    """Posteriors that spell ``text`` (each token for a few frames, blanks between);
    ``ambiguous[i]`` overrides the distribution of the i-th token's frames."""
    ids = TOKENS.encode(text)
    rows = []
    for i, token in enumerate(ids):
        dist = {TOKENS.tokens[token]: peak}
        if ambiguous and i in ambiguous:
            dist = ambiguous[i]
        for _ in range(frames_per_token):
            row = np.full(len(TOKENS), 1e-4)
            for sym, p in dist.items():
                row[TOKENS.index[sym]] = p
            rows.append(row / row.sum())
        blank = np.full(len(TOKENS), 1e-4)
        blank[0] = 1.0
        rows.append(blank / blank.sum())
    return torch.tensor(np.log(np.array(rows)))[None]


def decode_text(decoder, log_probs: torch.Tensor) -> str:
    (hyps,) = decoder.decode(log_probs, torch.tensor([log_probs.shape[1]]))
    return TOKENS.decode(hyps[0].tokens)


def test_word_lm_moves_an_ambiguous_word_towards_the_likely_one() -> None:
    # The second letter sounds a little more like "b" than "c": "ab" acoustically; the LM has
    # seen "ac" twenty times as often.
    lm = estimate_kneser_ney([["ac"]] * 20 + [["ab"]] + [["ba"]] * 5, order=2)
    log_probs = spell("ab", ambiguous={1: {"b": 0.5, "c": 0.4}})
    assert decode_text(PrefixBeamDecoder(beam_size=8), log_probs) == "ab"
    weak = PrefixBeamDecoder(beam_size=8, fusion=WordFusion(lm, TOKENS, alpha=0.01))
    assert decode_text(weak, log_probs) == "ab"
    strong = PrefixBeamDecoder(beam_size=8, fusion=WordFusion(lm, TOKENS, alpha=1.0))
    assert decode_text(strong, log_probs) == "ac"


def test_word_lm_scores_are_split_and_consistent() -> None:
    lm = estimate_kneser_ney([["ac", "ba"]] * 10, order=2)
    log_probs = spell("ac ba")
    alpha, beta = 0.7, 0.3
    decoder = PrefixBeamDecoder(beam_size=8, nbest=3, fusion=WordFusion(lm, TOKENS, alpha, beta))
    (hyps,) = decoder.decode(log_probs, torch.tensor([log_probs.shape[1]]))
    best = hyps[0]
    assert TOKENS.decode(best.tokens) == "ac ba"
    expected_lm = alpha * math.log(10) * lm.sentence_log10(["ac", "ba"]) + 2 * beta
    assert best.lm_score == pytest.approx(expected_lm, abs=1e-9)
    assert best.score == pytest.approx(best.am_score + best.lm_score, abs=1e-9)
    # The acoustic part is the labelling's probability, as without the LM (no pruning).
    unpruned = PrefixBeamDecoder(beam_size=50, token_min_logp=-math.inf, beam_threshold=None,
                                 fusion=WordFusion(lm, TOKENS, alpha, beta))
    fused = unpruned.decode(log_probs, torch.tensor([log_probs.shape[1]]))[0][0]
    plain = exhaustive().decode(log_probs, torch.tensor([log_probs.shape[1]]))[0][0]
    assert fused.tokens == plain.tokens
    assert fused.am_score == pytest.approx(plain.score, abs=1e-9)


def test_word_insertion_bonus_favours_more_words() -> None:
    # A weak space between "a" and "b": one word "ab" acoustically; a bonus per word splits it.
    log_probs = spell("a b", ambiguous={1: {"<space>": 0.2, "<blank>": 0.7}})
    assert decode_text(PrefixBeamDecoder(beam_size=8), log_probs) == "ab"
    bonus = PrefixBeamDecoder(beam_size=8, fusion=WordFusion(None, TOKENS, 0.0, beta=3.0))
    assert decode_text(bonus, log_probs) == "a b"
    penalty = PrefixBeamDecoder(beam_size=8, fusion=WordFusion(None, TOKENS, 0.0, beta=-3.0))
    split = spell("a b", ambiguous={1: {"<space>": 0.6, "<blank>": 0.35}})
    assert decode_text(PrefixBeamDecoder(beam_size=8), split) == "a b"
    assert decode_text(penalty, split) == "ab"


def test_oov_penalty_keeps_the_beam_inside_the_vocabulary() -> None:
    lm = estimate_kneser_ney([["ab"], ["ac"]], order=1)
    log_probs = spell("ab", ambiguous={0: {"c": 0.5, "a": 0.45}})  # "cb" is no LM word
    plain = PrefixBeamDecoder(beam_size=8)
    assert decode_text(plain, log_probs) == "cb"
    fused = PrefixBeamDecoder(beam_size=8, fusion=WordFusion(lm, TOKENS, alpha=0.1, oov_penalty=-5.0))
    assert decode_text(fused, log_probs) == "ab"


def test_char_lm_fusion() -> None:
    from asr.lm import char_units

    lm = estimate_kneser_ney([char_units(["ac", "ac"])] * 30 + [char_units(["ab", "ba"])], order=3)
    log_probs = spell("ab", ambiguous={1: {"b": 0.5, "c": 0.4}})
    fused = PrefixBeamDecoder(beam_size=8, fusion=CharFusion(lm, TOKENS, alpha=1.0))
    assert decode_text(fused, log_probs) == "ac"
    with pytest.raises(DecoderError, match="<space>"):
        CharFusion(estimate_kneser_ney([["ab"]], 1), TOKENS)


def test_word_token_fusion_over_a_word_model() -> None:
    words = Tokenizer.build(["yes no"], unit="word")  # <blank> <unk> no yes
    lm = estimate_kneser_ney([["yes", "no"]] * 10, order=2)
    probs = np.full((5, len(words)), 1e-3)
    probs[0, words.index["yes"]] = 1
    probs[1, 0] = 1
    probs[2, words.index["yes"]] = 0.5  # "yes" slightly ahead of "no" acoustically
    probs[2, words.index["no"]] = 0.45
    probs[3:, 0] = 1
    log_probs = torch.tensor(np.log(probs / probs.sum(1, keepdims=True)))[None]

    def best(decoder) -> str:
        return words.decode(decoder.decode(log_probs, torch.tensor([5]))[0][0].tokens)

    assert best(PrefixBeamDecoder(beam_size=4)) == "yes yes"
    assert best(PrefixBeamDecoder(beam_size=4, fusion=WordTokenFusion(lm, words, 1.0))) == "yes no"


def test_build_decoder_options() -> None:
    assert build_decoder("beam", TOKENS, beam_size=3, nbest=2).nbest == 2
    with pytest.raises(DecoderError, match="unknown decoder"):
        build_decoder("viterbi", TOKENS)
    with pytest.raises(DecoderError, match="needs --lexicon"):
        build_decoder("lexicon", TOKENS)
    with pytest.raises(DecoderError, match="no LM"):
        build_decoder("greedy", TOKENS, lm="x.arpa")


# --- GPU ------------------------------------------------------------------------------------

def test_cuda_decoder_without_cuda_says_what_to_use(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DecoderError, match="--decoder beam"):
        build_decoder("cuda", TOKENS)


@pytest.mark.gpu
def test_cuda_decoder_agrees_with_ours() -> None:
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not usable")
    log_probs = torch.cat([spell("ac ba"), spell("ab ab")[:, : spell("ac ba").shape[1]]])
    lengths = torch.tensor([log_probs.shape[1]] * 2)
    gpu = build_decoder("cuda", TOKENS, beam_size=8, nbest=2).decode(log_probs.float(), lengths)
    cpu = PrefixBeamDecoder(beam_size=8, nbest=2).decode(log_probs, lengths)
    for g, c in zip(gpu, cpu, strict=True):
        assert g[0].tokens == c[0].tokens
        assert len(g) == 2


# --- asr decode -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path, Path]:
    """An untrained character model, a 4-utterance data dir of tones, and a word LM."""
    root = tmp_path_factory.mktemp("beam_cli")
    torch.manual_seed(0)
    config = load_config(overrides=["features.sample_rate=8000", "features.n_mels=10",
                                    "model.num_layers=1", "model.hidden_size=8",
                                    "model.frame_stack=3", "features.cmvn=utterance"])
    texts = ["yes no", "no", "yes yes", "no yes no"]
    tokenizer = Tokenizer.build(texts)
    model = build_model(config.model, config.features, len(tokenizer))
    model_dir = save_model_dir(root / "model", model, config, tokenizer)
    utts = []
    for i, text in enumerate(texts):
        wav = root / f"u{i}.wav"
        sf.write(wav, tone(0.4 + 0.2 * i, 8000, 300 + 100 * i), 8000)
        utts.append(Utterance(f"spk-u{i}", str(wav), text, "spk"))
    data = write_data_dir(root / "data", utts).path
    lm = root / "lm.arpa"
    assert asr_main.main(["lm", "build", "--estimator", "builtin", "--order", "2", "--kaldi",
                          str(data / "text"), "-o", str(lm)]) == 0
    return model_dir, data, lm


def test_decode_cli_beam_nbest_and_ctm(tiny, tmp_path, capsys) -> None:
    model, data, lm = tiny
    out = tmp_path / "beam"
    assert asr_main.main(["decode", "--model", str(model), "--data", str(data), "--out", str(out),
                          "--decoder", "beam", "--beam-size", "4", "--nbest", "3",
                          "--lm", str(lm)]) == 0
    nbest = json.loads((out / "nbest.json").read_text())
    assert sorted(nbest) == [f"spk-u{i}" for i in range(4)]
    for alternatives in nbest.values():
        assert 1 <= len(alternatives) <= 3
        scores = [a["score"] for a in alternatives]
        assert scores == sorted(scores, reverse=True)
        for a in alternatives:
            assert a["score"] == pytest.approx(a["am_score"] + a["lm_score"], abs=1e-3)
    hyps = {}
    for line in (out / "text").read_text().splitlines():
        utt, *words = line.split()
        hyps[utt] = " ".join(words)
    assert {u: alts[0]["text"] for u, alts in nbest.items()} == hyps
    summary = json.loads((out / "score.json").read_text())
    assert summary["decoder"] == "beam" and summary["lm"] == str(lm)
    ctm = (out / "ctm").read_text().splitlines()
    words = json.loads((out / "words.json").read_text())
    assert len(ctm) == sum(len(w) for w in words.values())
    for line in ctm:
        utt, channel, start, dur, word, conf = line.split()
        assert channel == "1" and float(start) >= 0 and float(dur) > 0 and 0 <= float(conf) <= 1


def test_decode_cli_sweep_writes_kaldi_files_and_picks_the_best(tiny, tmp_path, capsys) -> None:
    model, data, lm = tiny
    out = tmp_path / "sweep"
    assert asr_main.main(["decode", "--model", str(model), "--data", str(data), "--out", str(out),
                          "--decoder", "beam", "--beam-size", "4", "--lm", str(lm),
                          "--lm-weight", "0.5,2", "--word-score=-1,0,2", "--tune-data", str(data)]) == 0
    tune = out / "tune"
    names = sorted(p.name for p in tune.glob("wer_*"))
    assert names == sorted(f"wer_{a}_{b}" for a in ("0.5", "2") for b in ("-1", "0", "2"))
    rates = {p.name: float(p.read_text().split()[1]) for p in tune.glob("wer_*")}
    best_line = (tune / "best_wer").read_text().split()
    assert float(best_line[1]) == min(rates.values())
    chosen = Path(best_line[-1]).name
    assert rates[chosen] == min(rates.values())
    summary = json.loads((out / "score.json").read_text())
    a, b = chosen.split("_")[1:]
    assert (summary["lm_weight"], summary["word_score"]) == (float(a), float(b))
    assert summary["sweep"]["tuned_on"] == str(data)


def test_decode_cli_greedy_output_is_unchanged_and_sweeps_are_refused(tiny, tmp_path, capsys) -> None:
    model, data, _ = tiny
    out = tmp_path / "greedy"
    assert asr_main.main(["decode", "--model", str(model), "--data", str(data), "--out", str(out)]) == 0
    assert "decoder" not in json.loads((out / "score.json").read_text())
    assert (out / "ctm").exists()
    code = asr_main.main(["decode", "--model", str(model), "--data", str(data), "--out", str(out),
                          "--lm-weight", "1,2"])
    assert code == 1
    assert "has no LM weight" in capsys.readouterr().err
    code = asr_main.main(["decode", "--model", str(model), "--data", str(data), "--out", str(out),
                          "--nbest", "3"])
    assert code == 1
    assert "--nbest needs a beam search" in capsys.readouterr().err
