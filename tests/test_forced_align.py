"""asr.decode.forced_align and ctm: word times from forced alignment of a hypothesis on synthetic
posteriors whose word times are known; confidences; CTM lines; the recognizer's word times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.decode import DecoderError, greedy_decode
from asr.decode.ctm import ctm_lines, write_ctm
from asr.decode.forced_align import align_tokens, align_words, best_path_log_prob
from asr.decode.prefix_beam import PrefixBeamDecoder
from asr.text import Tokenizer

TOKENS = Tokenizer.build(["one two three"])
FRAME = 0.03  # seconds per output frame, as the digits model's (10 ms hop x 3)


def synthetic(words: list[tuple[str, float, float]], seconds: float, seed: int = 0,
              peak: float = 0.7) -> torch.Tensor:
    """``(frames, vocab)`` log-posteriors of a recording where each word (text, start, end in
    seconds) is spoken over its interval: its letters share the interval equally, the word
    boundary token sits in the silence after it, blank rules elsewhere. Noise on every frame.
    Words must be at least two frames per letter long."""
    rng = np.random.default_rng(seed)
    frames = int(round(seconds / FRAME))
    probs = rng.dirichlet(np.ones(len(TOKENS)) * 0.5, size=frames) * 0.1
    owner = np.zeros(frames, dtype=int)  # blank
    for i, (word, start, end) in enumerate(words):
        a, b = int(round(start / FRAME)), int(round(end / FRAME))
        bounds = np.linspace(a, b, len(word) + 1).round().astype(int)
        for k, (char, lo, hi) in enumerate(zip(word, bounds[:-1], bounds[1:], strict=True)):
            owner[lo:hi] = TOKENS.index[char]
            if k and word[k - 1] == char:
                owner[lo] = 0  # a doubled letter is two tokens only with a blank between
        if i + 1 < len(words):
            gap = int(round(words[i + 1][1] / FRAME))
            owner[b + (gap - b) // 2] = TOKENS.space_id
    for t, token in enumerate(owner):
        probs[t, token] += peak if token else 0.9
    probs /= probs.sum(axis=1, keepdims=True)
    return torch.tensor(np.log(probs), dtype=torch.float32)


WORDS = [("one", 0.30, 0.75), ("two", 1.20, 1.53), ("three", 2.10, 2.85)]


@pytest.mark.parametrize("seed", range(5))
def test_word_times_within_two_frames(seed: int) -> None:
    log_probs = synthetic(WORDS, 3.3, seed)
    tokens = TOKENS.encode("one two three")
    spans = align_words(log_probs, tokens, TOKENS)
    assert [s.word for s in spans] == ["one", "two", "three"]
    for span, (_, start, end) in zip(spans, WORDS, strict=True):
        assert abs(span.start * FRAME - start) <= 2 * FRAME
        assert abs(span.end * FRAME - end) <= 2 * FRAME
        assert 0.5 < span.confidence <= 1.0


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_word_times_property(data) -> None:
    # Random word placements and durations: alignment recovers them within two frames.
    names = data.draw(st.lists(st.sampled_from(["one", "two", "three"]), min_size=1, max_size=4))
    t = 0.15
    placed = []
    for name in names:
        t += data.draw(st.floats(0.1, 0.5))
        length = data.draw(st.floats(2 * FRAME * len(name), 0.6))
        placed.append((name, round(t, 2), round(t + length, 2)))
        t += length + 0.12
    log_probs = synthetic(placed, t + 0.3, data.draw(st.integers(0, 99)))
    spans = align_words(log_probs, TOKENS.encode(" ".join(names)), TOKENS)
    assert [s.word for s in spans] == names
    for span, (_, start, end) in zip(spans, placed, strict=True):
        assert abs(span.start * FRAME - start) <= 2 * FRAME + 1e-9
        assert abs(span.end * FRAME - end) <= 2 * FRAME + 1e-9


def test_decoded_hypothesis_is_aligned_like_greedy() -> None:
    log_probs = synthetic(WORDS, 3.3, 7)
    (greedy,) = greedy_decode(log_probs[None], torch.tensor([log_probs.shape[0]]))
    spans = align_tokens(log_probs, greedy.tokens)
    # The best path of greedy's own labelling is greedy's path: same first frames, and the
    # confidence (posterior at the first frame) is the one greedy search reports.
    assert [s.start for s in spans] == greedy.frames
    posteriors = log_probs.exp()
    assert [s.posterior for s in spans] == pytest.approx([float(posteriors[f, t]) for f, t in zip(greedy.frames, greedy.tokens, strict=True)])
    assert best_path_log_prob(log_probs, greedy.tokens) == pytest.approx(greedy.log_prob, abs=1e-4)
    (beam,) = PrefixBeamDecoder(beam_size=8).decode(log_probs[None], torch.tensor([log_probs.shape[0]]))
    assert TOKENS.decode(beam[0].tokens) == "one two three"


def test_repeated_letters_and_errors() -> None:
    # "ee" needs a blank between the two e's; spans follow the hypothesis order.
    probs = np.full((8, len(TOKENS)), 1e-3)
    e, blank = TOKENS.index["e"], 0
    for t, tok in enumerate([blank, e, e, blank, e, blank, blank, blank]):
        probs[t, tok] = 1.0
    log_probs = torch.tensor(np.log(probs / probs.sum(1, keepdims=True)), dtype=torch.float32)
    spans = align_tokens(log_probs, [e, e])
    assert [(s.start, s.end) for s in spans] == [(1, 3), (4, 5)]
    with pytest.raises(DecoderError, match="cannot align 3 tokens to 2 frames"):
        align_tokens(log_probs[:2], [e, e, e])
    assert align_tokens(log_probs, []) == []


def test_ctm_lines_and_file(tmp_path: Path) -> None:
    words = [{"word": "one", "start": 0.3, "end": 0.75, "confidence": 0.91234},
             {"word": "two", "start": 1.2, "end": 1.53, "confidence": 0.5}]
    assert ctm_lines("utt1", words) == ["utt1 1 0.300 0.450 one 0.9123", "utt1 1 1.200 0.330 two 0.5000"]
    path = write_ctm(tmp_path / "ctm", {"b": words[1:], "a": words[:1], "c": []})
    assert path.read_text().splitlines() == ["a 1 0.300 0.450 one 0.9123", "b 1 1.200 0.330 two 0.5000"]


def test_recognizer_word_times_from_alignment(tmp_path: Path) -> None:
    from asr.config import load_config
    from asr.inference import Recognizer
    from asr.model import build_model
    from asr.modeldir import load_model_dir, save_model_dir

    config = load_config(overrides=["features.sample_rate=8000", "features.n_mels=10",
                                    "model.num_layers=1", "model.hidden_size=8",
                                    "model.frame_stack=3", "features.cmvn=utterance"])
    model = build_model(config.model, config.features, len(TOKENS))
    recognizer = Recognizer(load_model_dir(save_model_dir(tmp_path / "m", model, config, TOKENS)),
                            torch.device("cpu"))
    log_probs = synthetic(WORDS, 3.3, 1)[None]
    lengths = torch.tensor([log_probs.shape[1]])
    (greedy,) = recognizer.results(log_probs, lengths, [3.3])
    (beam,) = recognizer.results(log_probs, lengths, [3.3], PrefixBeamDecoder(beam_size=4, nbest=2))
    assert greedy.text == beam.text == "one two three"
    step = recognizer.frame_seconds
    for g, b, (_, start, end) in zip(greedy.words, beam.words, WORDS, strict=True):
        # Same start and confidence definition as greedy; the end is the aligned last frame.
        assert (b.start, b.confidence) == (g.start, g.confidence)
        assert abs(b.start - start / FRAME * step) <= 2 * step
        assert abs(b.end - end / FRAME * step) <= 2 * step
    assert [a.text for a in beam.alternatives][0] == "one two three"
    assert len(beam.alternatives) == 2 and "alternatives" not in greedy.to_dict()
