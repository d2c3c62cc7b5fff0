"""Word timestamps and confidences from CTC forced alignment of a hypothesis.

``torchaudio.functional.forced_align`` finds the best alignment (Viterbi path) of a token
sequence to the log-posteriors; each token then owns a span of frames, and a word runs from
the first frame of its first token to the last frame of its last token.

Word confidence (every decoder): the mean, over the word's tokens, of the token's posterior at
the frame where the alignment emits it (the first frame of its span). For greedy decoding
the alignment is the best path itself, so this is the same figure greedy search reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from asr.decode.base import DecoderError
from asr.text.tokenizer import Tokenizer


@dataclass
class TokenSpan:
    token: int
    start: int  # first frame
    end: int  # one past the last frame
    posterior: float  # at the first frame


@dataclass
class WordSpan:
    word: str
    start: int  # first frame
    end: int  # one past the last frame
    confidence: float


def align_tokens(log_probs: torch.Tensor, tokens: list[int], blank: int = 0) -> list[TokenSpan]:
    """The frames of each token of ``tokens`` (blanks removed) in ``(time, vocab)`` log-probs."""
    if not tokens:
        return []
    time = log_probs.shape[0]
    repeats = sum(1 for a, b in zip(tokens, tokens[1:], strict=False) if a == b)
    if time < len(tokens) + repeats:
        raise DecoderError(f"cannot align {len(tokens)} tokens to {time} frames")
    import torchaudio.functional as F

    emissions = log_probs.detach().to("cpu", torch.float32)[None]
    targets = torch.tensor([tokens], dtype=torch.int32)
    path, _ = F.forced_align(emissions, targets, blank=blank)
    path = path[0].numpy()
    # A token starts where the path enters a non-blank label different from the previous
    # frame's, or the same label after a blank; the spans follow the order of ``tokens``.
    prev = np.concatenate([[blank], path[:-1]])
    starts = np.nonzero((path != blank) & (path != prev))[0]
    if len(starts) != len(tokens):  # cannot happen for a valid alignment
        raise DecoderError("forced alignment returned a path that does not spell the hypothesis")
    spans = []
    posteriors = emissions[0].exp().numpy()
    for i, (token, start) in enumerate(zip(tokens, starts.tolist(), strict=True)):
        end = start + 1
        limit = starts[i + 1] if i + 1 < len(starts) else len(path)
        while end < limit and path[end] == token:
            end += 1
        spans.append(TokenSpan(token, start, end, float(posteriors[start, token])))
    return spans


def word_spans(spans: list[TokenSpan], tokenizer: Tokenizer) -> list[WordSpan]:
    """Token spans grouped into words (``<space>`` separates words of a character model)."""
    tokens = [s.token for s in spans]
    words = []
    for group in tokenizer.word_groups(tokens):
        members = [spans[p] for p in group]
        conf = float(np.mean([m.posterior for m in members]))
        words.append(WordSpan(tokenizer.decode([m.token for m in members]), members[0].start,
                              members[-1].end, conf))
    return words


def align_words(log_probs: torch.Tensor, tokens: list[int], tokenizer: Tokenizer,
                blank: int = 0) -> list[WordSpan]:
    """Word spans of a hypothesis: :func:`align_tokens` then :func:`word_spans`."""
    return word_spans(align_tokens(log_probs, tokens, blank), tokenizer)


def best_path_log_prob(log_probs: torch.Tensor, tokens: list[int], blank: int = 0) -> float:
    """log-probability of the best alignment of ``tokens`` to ``(time, vocab)`` log-probs."""
    import torchaudio.functional as F

    emissions = log_probs.detach().to("cpu", torch.float32)[None]
    if not tokens:
        return float(emissions[0, :, blank].sum())
    targets = torch.tensor([tokens], dtype=torch.int32)
    _, scores = F.forced_align(emissions, targets, blank=blank)
    return float(scores.sum())
