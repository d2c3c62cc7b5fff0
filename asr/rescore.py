"""N-best rescoring across systems: each acoustic model proposes hypotheses with its own
search, then every model scores every proposal, and one word LM and a word bonus complete the
score.

A hypothesis ``h`` of an utterance (a word sequence) scores::

    score(h) = mean over systems m of log P_m(h | audio)
               + lm_weight * ln P_LM(h) + word_score * len(h)

``log P_m(h | audio)`` is model m's CTC log-likelihood of ``h`` spelled in its own units (summed
over alignments): a phone model's words through its lexicon (the best of their pronunciations),
a character or BPE model's through its tokenizer. The candidates are the union of every
system's n-best list, in system order. So systems with different units, features or
normalisation combine their whole sequence-level judgements, not one word each as ROVER
(:mod:`asr.rover`) does, and not frame by frame as averaged posteriors (:mod:`asr.ensemble`)
do, which needs the models' CTC spikes on the same frames.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from asr.data.datadir import DataDir, read_data_dir
from asr.decode.base import DecoderError
from asr.decode.sweep import compute_posteriors, search
from asr.text.tokenizer import BLANK, Tokenizer

if TYPE_CHECKING:
    from asr.inference import Recognizer
    from asr.lm import NgramLM

# The log-likelihood of a hypothesis that a system cannot spell (a word outside its lexicon) or
# align (more tokens than frames): finite, so that the mean over systems stays comparable.
IMPOSSIBLE = -1.0e4
# Pronunciation combinations tried per hypothesis and system (a spelled letter string of ten
# A's has 2**10); beyond them each word keeps its first pronunciation.
MAX_PRONUNCIATIONS = 64
# Hypotheses per ctc_loss call: bounds the memory of the expanded (time, n, vocab) input.
CTC_CHUNK = 256


class Speller:
    """A word sequence as the token sequences one model would emit for it: one per combination
    of pronunciations (phone lexicons), else exactly one.

    ``lexicon`` maps each word to its spellings in the model's tokens (a decoder lexicon,
    :func:`asr.decode.lexicon.read_lexicon`); without one the tokenizer encodes the text
    (characters, BPE pieces, words). With a ``<space>`` word-boundary token every word but the
    last is followed by it, as the model was trained to emit."""

    def __init__(self, tokenizer: Tokenizer, lexicon: Mapping[str, list[list[str]]] | None = None) -> None:
        if lexicon is None and tokenizer.unit == "phone":
            raise DecoderError("a phone model needs a lexicon to spell other systems' words: "
                               "give it one with `asr models set-decoder --lexicon`")
        self.tokenizer = tokenizer
        self.boundary = tokenizer.space_id
        self.lexicon: dict[str, list[list[int]]] | None = None
        if lexicon is not None:
            self.lexicon = {}
            for word, spellings in lexicon.items():
                ids = [[tokenizer.index[t] for t in s] for s in spellings]
                if self.boundary is not None:
                    ids = [s[:-1] if s and s[-1] == self.boundary else s for s in ids]
                self.lexicon[word] = ids

    @classmethod
    def for_model(cls, recognizer: Recognizer) -> Speller:
        """The speller of a loaded model: its decoder's lexicon when it searches with one."""
        try:
            return cls(recognizer.tokenizer, getattr(recognizer.decoder, "spellings", None))
        except DecoderError as exc:
            raise DecoderError(f"{recognizer.loaded.path}: {exc}") from None

    def targets(self, words: Sequence[str]) -> list[list[int]]:
        """The token sequences of ``words`` (blank-free, boundaries between words); empty when
        a word has no spelling in this model's lexicon."""
        if self.lexicon is None:
            return [self.tokenizer.encode(" ".join(words))]
        options = []
        for word in words:
            spellings = self.lexicon.get(word)
            if not spellings:
                return []
            options.append(spellings)
        if math.prod(len(o) for o in options) > MAX_PRONUNCIATIONS:
            # Keep the first pronunciation of the last words until the product fits.
            for i in range(len(options) - 1, -1, -1):
                if math.prod(len(o) for o in options) <= MAX_PRONUNCIATIONS:
                    break
                options[i] = options[i][:1]
        sep = [] if self.boundary is None else [self.boundary]
        return [[t for i, s in enumerate(combo) for t in (sep if i else []) + s]
                for combo in itertools.product(*options)]


def ctc_log_likelihoods(log_probs: torch.Tensor, targets: Sequence[Sequence[int]],
                        blank: int = 0) -> torch.Tensor:
    """``(time, vocab)`` log-posteriors of one utterance and ``n`` token sequences ->
    ``(n,)`` CTC log-likelihoods, summed over alignments (``IMPOSSIBLE`` for a sequence that
    cannot be aligned to so few frames)."""
    frames, vocab = log_probs.shape
    out = torch.empty(len(targets), dtype=torch.float64)
    for start in range(0, len(targets), CTC_CHUNK):
        chunk = targets[start : start + CTC_CHUNK]
        n = len(chunk)
        flat = torch.tensor([t for seq in chunk for t in seq], dtype=torch.long)
        lengths = torch.tensor([len(seq) for seq in chunk], dtype=torch.long)
        loss = F.ctc_loss(log_probs.detach().float()[:, None, :].expand(frames, n, vocab), flat,
                          torch.full((n,), frames, dtype=torch.long), lengths, blank=blank,
                          reduction="none", zero_infinity=False)
        out[start : start + n] = (-loss.double()).clamp(min=IMPOSSIBLE)
    return out


@dataclass
class Candidates:
    """One utterance's candidate hypotheses and what each system and the LM think of them.

    ``am``: ``(systems, n)`` CTC log-likelihoods; ``lm``: ``(n,)`` natural-log LM probability
    (zeros without an LM); ``targets[m][i]``: the token sequence (best pronunciation) of
    candidate i in system m's units, empty when system m cannot spell it."""

    texts: list[str]
    am: np.ndarray
    lm: np.ndarray
    targets: list[list[list[int]]]

    def scores(self, lm_weight: float, word_score: float) -> np.ndarray:
        """``(n,)`` combined scores (see the module docstring)."""
        words = np.array([len(t.split()) for t in self.texts], dtype=np.float64)
        return self.am.mean(axis=0) + lm_weight * self.lm + word_score * words

    def best(self, lm_weight: float, word_score: float) -> int:
        """Index of the best candidate; a tie goes to the earliest (system 1's best first)."""
        return int(np.argmax(self.scores(lm_weight, word_score)))


def union(nbests: Sequence[Sequence[str]]) -> list[str]:
    """The distinct hypotheses of the systems' n-best lists, system 1's first, in order."""
    return list(dict.fromkeys(" ".join(h.split()) for nbest in nbests for h in nbest))


def score_candidates(texts: Sequence[str], log_probs: Sequence[torch.Tensor],
                     spellers: Sequence[Speller], lm: NgramLM | None = None) -> Candidates:
    """Score every candidate of one utterance with every system (``log_probs[m]``: system m's
    ``(time, vocab)`` log-posteriors) and the LM."""
    texts = list(texts)
    am = np.full((len(spellers), len(texts)), IMPOSSIBLE)
    targets: list[list[list[int]]] = []
    for m, (speller, posteriors) in enumerate(zip(spellers, log_probs, strict=True)):
        blank = speller.tokenizer.index[BLANK]
        spelled = [speller.targets(t.split()) for t in texts]
        flat = [seq for options in spelled for seq in options]
        scores = ctc_log_likelihoods(posteriors, flat, blank).numpy() if flat else np.empty(0)
        best: list[list[int]] = []
        k = 0
        for i, options in enumerate(spelled):
            if options:
                j = int(np.argmax(scores[k : k + len(options)]))
                am[m, i] = scores[k + j]
                best.append(options[j])
            else:
                best.append([])
            k += len(options)
        targets.append(best)
    ln_lm = np.zeros(len(texts))
    if lm is not None:
        ln_lm = np.array([lm.sentence_log10(t.split()) * math.log(10.0) for t in texts])
    return Candidates(texts, am, ln_lm, targets)


@dataclass
class RescoreWeights:
    """The combination's search: LM weight and word score of the rescoring, n-best size of
    each system's search."""

    lm_weight: float = 0.5
    word_score: float = 0.0
    nbest: int = 16

    def __post_init__(self) -> None:
        if self.nbest < 1:
            raise DecoderError(f"n-best size {self.nbest}: must be 1 or more")


def choose(candidates: Mapping[str, Candidates], lm_weight: float, word_score: float) -> dict[str, str]:
    """The best candidate's text of every utterance."""
    return {u: c.texts[c.best(lm_weight, word_score)] if c.texts else ""
            for u, c in candidates.items()}


@dataclass
class DataDirCandidates:
    """The candidates of every utterance of a data directory that all systems could read."""

    data: DataDir
    candidates: dict[str, Candidates]
    unreadable: list[str]
    audio_seconds: float
    seconds: float  # networks, searches and scoring

    @property
    def refs(self) -> dict[str, str]:
        return self.data.refs(self.candidates)

    @property
    def utt2spk(self) -> dict[str, str]:
        return self.data.utt2spk


def data_dir_candidates(recognizers: Sequence[Recognizer], data: DataDir | str | Path,
                        lm: NgramLM | None = None, batch_size: int = 32,
                        max_bad_utts: int = 0) -> DataDirCandidates:
    """Run every system over ``data`` (speaker by speaker for per-speaker CMVN models, as
    ``asr decode`` does), take each one's n-best list from its own search (loaded keeping
    one: ``asr.inference.load_system(path, nbest=N)``), and score the union of them with
    every system and ``lm``."""
    if not isinstance(data, DataDir):
        data = read_data_dir(data, require_text=False)
    start = time.perf_counter()
    spellers = [Speller.for_model(r) for r in recognizers]
    posteriors, nbests = [], []
    for recognizer in recognizers:
        post = compute_posteriors(recognizer, data, batch_size, max_bad_utts)
        results, _ = search(recognizer, post, recognizer.decoder)
        posteriors.append(post)
        nbests.append({u: [a.text for a in r.alternatives] or [r.text] for u, r in results.items()})
    readable = [u for u in posteriors[0].log_probs if all(u in p.log_probs for p in posteriors)]
    unreadable = sorted({u.utt_id for u in data.utterances} - set(readable))
    candidates = {u: score_candidates(union([n[u] for n in nbests]),
                                      [p.log_probs[u] for p in posteriors], spellers, lm)
                  for u in readable}
    audio = sum(posteriors[0].durations[u] for u in readable)
    return DataDirCandidates(data, candidates, unreadable, audio, time.perf_counter() - start)
