"""asr.decode.greedy: best-path collapse on hand-built posteriors."""

from __future__ import annotations

import math

import pytest
import torch

from asr.decode import greedy_decode

VOCAB = 5


def posteriors(path: list[int], peak: float = 0.9) -> torch.Tensor:
    """``(time, VOCAB)`` log-probs whose argmax follows ``path`` with probability ``peak``."""
    probs = torch.full((len(path), VOCAB), (1 - peak) / (VOCAB - 1))
    for t, token in enumerate(path):
        probs[t, token] = peak
    return probs.log()


def batch(paths: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    time = max(len(p) for p in paths)
    out = torch.zeros(len(paths), time, VOCAB)
    for i, path in enumerate(paths):
        # Padding frames favour token 4, so that any leak past the length shows up.
        out[i] = posteriors(path + [4] * (time - len(path)))
    return out, torch.tensor([len(p) for p in paths])


def test_collapse_repeats_and_blanks() -> None:
    path = [1, 1, 0, 1, 2, 2, 0, 0, 3, 3]
    log_probs, lengths = batch([path])
    (hyp,) = greedy_decode(log_probs, lengths)
    # "1 1" merged; "1 _ 1" kept twice; blanks removed.
    assert hyp.tokens == [1, 1, 2, 3]
    assert hyp.frames == [0, 3, 4, 8]
    assert hyp.log_prob == pytest.approx(len(path) * math.log(0.9), rel=1e-5)


def test_all_blank_and_leading_blanks() -> None:
    log_probs, lengths = batch([[0, 0, 0], [0, 2, 0, 2]])
    blank, leading = greedy_decode(log_probs, lengths)
    assert blank.tokens == [] and blank.frames == []
    assert leading.tokens == [2, 2] and leading.frames == [1, 3]


def test_frames_past_length_are_ignored() -> None:
    paths = [[1, 2, 3, 0, 1, 1, 2], [3, 3], [0, 1, 0]]
    log_probs, lengths = batch(paths)
    hyps = greedy_decode(log_probs, lengths)
    assert [h.tokens for h in hyps] == [[1, 2, 3, 1, 2], [3], [1]]
    assert [h.frames for h in hyps] == [[0, 1, 2, 4, 6], [0], [1]]
    # The path score sums only valid frames.
    for hyp, path in zip(hyps, paths, strict=True):
        assert hyp.log_prob == pytest.approx(len(path) * math.log(0.9), rel=1e-5)
    # Shorter lengths truncate the same posteriors.
    (short,) = greedy_decode(log_probs[:1], torch.tensor([3]))
    assert short.tokens == [1, 2, 3] and short.frames == [0, 1, 2]


def test_batch_matches_one_at_a_time() -> None:
    torch.manual_seed(0)
    log_probs = torch.randn(3, 12, VOCAB).log_softmax(-1)
    lengths = torch.tensor([12, 5, 9])
    hyps = greedy_decode(log_probs, lengths)
    for i in range(3):
        (alone,) = greedy_decode(log_probs[i : i + 1, : lengths[i]], lengths[i : i + 1])
        assert (alone.tokens, alone.frames) == (hyps[i].tokens, hyps[i].frames)
        # A float32 sum of <= 12 same-sign log-probs, over a padded row or alone: reordering
        # moves it by <= 12 * eps ~ 7e-7 relative (worst case; ~2e-7 typical). A padding frame
        # counted in would add a whole log-prob (~10%).
        assert alone.log_prob == pytest.approx(hyps[i].log_prob, rel=1e-6)


def test_other_blank_index() -> None:
    log_probs, lengths = batch([[4, 1, 4, 1, 1, 0]])
    (hyp,) = greedy_decode(log_probs, lengths, blank=4)
    assert hyp.tokens == [1, 1, 0]


def test_decoder_interface_matches_the_function() -> None:
    from asr.decode import GreedyDecoder, build_decoder

    log_probs, lengths = batch([[1, 1, 0, 2], [3, 0, 3]])
    decoder = build_decoder("greedy", None)
    assert isinstance(decoder, GreedyDecoder) and decoder.nbest == 1
    for (hyp,), ref in zip(decoder.decode(log_probs, lengths), greedy_decode(log_probs, lengths), strict=True):
        assert (hyp.tokens, hyp.frames, hyp.score, hyp.am_score, hyp.lm_score) == (
            ref.tokens, ref.frames, ref.log_prob, ref.log_prob, 0.0)


@pytest.mark.gpu
def test_gpu_batch_equals_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not usable")
    torch.manual_seed(0)
    log_probs = torch.randn(5, 40, VOCAB).log_softmax(-1)
    lengths = torch.tensor([40, 3, 17, 40, 1])
    cpu = greedy_decode(log_probs, lengths)
    gpu = greedy_decode(log_probs.cuda(), lengths.cuda())
    assert [(h.tokens, h.frames) for h in gpu] == [(h.tokens, h.frames) for h in cpu]
    # float32 sums of <= 40 same-sign terms on two devices: each <= 40 eps ~ 2.4e-6 off.
    assert [h.log_prob for h in gpu] == pytest.approx([h.log_prob for h in cpu], rel=1e-5)
