"""Shallow fusion of an n-gram LM into the CTC prefix beam search.

A fusion scorer numbers the LM states it has met (an int per beam) and keeps, for each state, a
row of score bonuses over the acoustic model's tokens: the bonus for extending a prefix in that
state with each token, natural log, already weighted (``alpha * ln P_lm + beta`` where a word
ends). The beam search gathers bonuses for a whole ``(batch, beam, candidates)`` block with one
numpy index; a state's row is computed once, the first time the state appears.

- :class:`WordFusion`: word LM over a character model; a word is scored when ``<space>`` (or
  the end of the utterance) completes it, and a character that leaves every LM word's prefixes
  costs ``oov_penalty`` at once, so that the beam does not fill with non-words;
- :class:`WordTokenFusion`: word LM over a word-level model: every token is a word;
- :class:`CharFusion`: character LM (built with ``asr lm build --unit char``) over a
  character model; ``beta`` is added per word.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable

import numpy as np

from asr.decode.base import DecoderError
from asr.lm.arpa import LN10, NgramLM
from asr.text.tokenizer import SPACE, UNK, Tokenizer


class Fusion(ABC):
    """Integer LM states with cached bonus rows. Subclasses define the states by three
    methods on hashable keys: :meth:`_start`, :meth:`_step`, :meth:`_row`, :meth:`_final`."""

    def __init__(self, vocab_size: int, alpha: float, beta: float) -> None:
        self.vocab_size = vocab_size
        self.alpha = alpha
        self.beta = beta
        self._keys: list[Hashable] = []
        self._ids: dict[Hashable, int] = {}
        self._next: dict[tuple[int, int], int] = {}
        self.table = np.zeros((16, vocab_size))  # (states, vocab) bonuses
        self._finals = np.zeros(16)
        self.start = self._state(self._start())

    def _state(self, key: Hashable) -> int:
        state = self._ids.get(key)
        if state is None:
            state = len(self._keys)
            if state == len(self.table):
                self.table = np.concatenate([self.table, np.zeros_like(self.table)])
                self._finals = np.concatenate([self._finals, np.zeros_like(self._finals)])
            self._keys.append(key)
            self._ids[key] = state
            self.table[state] = self._row(key)
            self._finals[state] = self._final(key)
        return state

    def advance(self, states: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The states reached by appending ``tokens`` (same shape as ``states``)."""
        out = np.empty(len(states), dtype=np.int64)
        for i, (s, t) in enumerate(zip(states.tolist(), tokens.tolist(), strict=True)):
            nxt = self._next.get((s, t))
            if nxt is None:
                nxt = self._next[(s, t)] = self._state(self._step(self._keys[s], t))
            out[i] = nxt
        return out

    def final(self, states: np.ndarray) -> np.ndarray:
        """The bonus for ending the utterance in each state."""
        return self._finals[states]

    @abstractmethod
    def _start(self) -> Hashable: ...

    @abstractmethod
    def _step(self, key: Hashable, token: int) -> Hashable: ...

    @abstractmethod
    def _row(self, key: Hashable) -> np.ndarray: ...

    @abstractmethod
    def _final(self, key: Hashable) -> float: ...


def _lm_log(lm: NgramLM | None, ctx: tuple[int, ...]) -> np.ndarray | None:
    return None if lm is None else lm.next_log10(ctx) * LN10


class WordFusion(Fusion):
    """Word LM over a character tokenizer. State key: (LM context, partial word)."""

    def __init__(self, lm: NgramLM | None, tokenizer: Tokenizer, alpha: float = 0.5,
                 beta: float = 0.0, oov_penalty: float = -10.0) -> None:
        if tokenizer.unit != "char":
            raise DecoderError("word LM fusion over characters needs a character model; this "
                               "model's tokens are words (use it with a word LM directly)")
        self.lm = lm
        self.tokenizer = tokenizer
        self.space = tokenizer.space_id
        self.oov_penalty = oov_penalty
        self.chars = [t if len(t) == 1 else None for t in tokenizer.tokens]
        # For every prefix of an LM word: which tokens continue it into another prefix.
        self.prefix_ok: dict[str, np.ndarray] = {}
        if lm is not None:
            words = [w for w in lm.vocab if not w.startswith("<")]
            prefixes = {w[:i] for w in words for i in range(len(w) + 1)}
            char_ids = [(i, c) for i, c in enumerate(self.chars) if c is not None]
            for p in prefixes:
                ok = np.zeros(len(tokenizer), dtype=bool)
                for i, c in char_ids:
                    ok[i] = p + c in prefixes
                self.prefix_ok[p] = ok
        self.is_char = np.array([c is not None for c in self.chars])
        super().__init__(len(tokenizer), alpha, beta)

    def _start(self) -> Hashable:
        bos = self.lm.bos if self.lm is not None else None
        return ((bos,) if bos is not None else (), "")

    def _word_score(self, ctx: tuple[int, ...], word: str) -> tuple[float, tuple[int, ...]]:
        if self.lm is None:
            return self.beta, ctx
        wid = self.lm.index.get(word)
        penalty = 0.0
        if wid is None:
            # A prefix of LM words that is not one has not been charged yet; others have.
            penalty = self.oov_penalty if word in self.prefix_ok else 0.0
            wid = self.lm.unk
            if wid is None:  # no <unk> in the LM: the context stays as it was
                return self.beta + penalty, ctx
        logp = self.lm.log10_prob(ctx, wid) * LN10
        return self.alpha * logp + self.beta + penalty, self.lm.trim((*ctx, wid))

    def _step(self, key: Hashable, token: int) -> Hashable:
        ctx, partial = key  # type: ignore[misc]
        if token == self.space:
            if not partial:
                return key
            return (self._word_score(ctx, partial)[1], "")
        char = self.chars[token] if self.chars[token] is not None else UNK
        return (ctx, partial + char)

    def _row(self, key: Hashable) -> np.ndarray:
        ctx, partial = key  # type: ignore[misc]
        row = np.zeros(self.vocab_size)
        if self.lm is not None:
            ok = self.prefix_ok.get(partial)
            if ok is not None:  # still inside some LM word: leaving all of them costs once
                row[~ok] = self.oov_penalty
            row[self.space] = 0.0
        if partial:
            row[self.space] = self._word_score(ctx, partial)[0]
        return row

    def _final(self, key: Hashable) -> float:
        ctx, partial = key  # type: ignore[misc]
        score = 0.0
        if partial:
            score, ctx = self._word_score(ctx, partial)
        if self.lm is not None:
            score += self.alpha * self.lm.log10_prob(ctx, self.lm.eos) * LN10
        return score


class WordTokenFusion(Fusion):
    """Word LM over a word tokenizer. State key: the LM context."""

    def __init__(self, lm: NgramLM, tokenizer: Tokenizer, alpha: float = 0.5,
                 beta: float = 0.0, oov_penalty: float = -10.0) -> None:
        self.lm = lm
        self.oov_penalty = oov_penalty
        lm_ids = [lm.index.get(t, lm.unk) for t in tokenizer.tokens]
        lm_ids[0] = None  # blank
        if UNK in tokenizer.index:
            lm_ids[tokenizer.index[UNK]] = lm.unk
        self.known = np.array([i is not None for i in lm_ids])
        self.lm_ids = np.array([i if i is not None else 0 for i in lm_ids])
        self.token_lm_ids = lm_ids
        super().__init__(len(tokenizer), alpha, beta)

    def _start(self) -> Hashable:
        return (self.lm.bos,) if self.lm.bos is not None else ()

    def _step(self, key: Hashable, token: int) -> Hashable:
        wid = self.token_lm_ids[token]
        return key if wid is None else self.lm.trim((*key, wid))  # type: ignore[misc]

    def _row(self, key: Hashable) -> np.ndarray:
        logp = _lm_log(self.lm, key)  # type: ignore[arg-type]
        return np.where(self.known, self.alpha * logp[self.lm_ids], self.oov_penalty) + self.beta

    def _final(self, key: Hashable) -> float:
        return self.alpha * self.lm.log10_prob(key, self.lm.eos) * LN10  # type: ignore[arg-type]


class CharFusion(Fusion):
    """Character LM over a character tokenizer. State key: (LM context, inside a word)."""

    def __init__(self, lm: NgramLM, tokenizer: Tokenizer, alpha: float = 0.5,
                 beta: float = 0.0, oov_penalty: float = -10.0) -> None:
        if tokenizer.unit != "char":
            raise DecoderError("a character LM needs a character model")
        if SPACE not in lm.index:
            raise DecoderError(f"{lm.source}: a character LM must contain {SPACE} between words "
                               "(build it with asr lm build --unit char)")
        self.lm = lm
        self.space = tokenizer.space_id
        lm_ids = [lm.index.get(t, lm.unk) for t in tokenizer.tokens]
        lm_ids[0] = None
        self.known = np.array([i is not None for i in lm_ids])
        self.lm_ids = np.array([i if i is not None else 0 for i in lm_ids])
        self.token_lm_ids = lm_ids
        self.oov_penalty = oov_penalty
        super().__init__(len(tokenizer), alpha, beta)

    def _start(self) -> Hashable:
        return ((self.lm.bos,) if self.lm.bos is not None else (), False)

    def _step(self, key: Hashable, token: int) -> Hashable:
        ctx, _ = key  # type: ignore[misc]
        wid = self.token_lm_ids[token]
        if wid is None:
            return key
        return (self.lm.trim((*ctx, wid)), token != self.space)

    def _row(self, key: Hashable) -> np.ndarray:
        ctx, in_word = key  # type: ignore[misc]
        logp = _lm_log(self.lm, ctx)
        row = np.where(self.known, self.alpha * logp[self.lm_ids], self.oov_penalty)
        if in_word:
            row[self.space] += self.beta
        return row

    def _final(self, key: Hashable) -> float:
        ctx, in_word = key  # type: ignore[misc]
        return self.alpha * self.lm.log10_prob(ctx, self.lm.eos) * LN10 + (self.beta if in_word else 0.0)


def build_fusion(lm: NgramLM | None, tokenizer: Tokenizer, alpha: float, beta: float,
                 unit: str = "word", oov_penalty: float = -10.0) -> Fusion | None:
    """The fusion scorer for a model's tokenizer and an LM of ``unit`` (``word`` or ``char``);
    None when there is nothing to add (no LM and no insertion bonus)."""
    if lm is None and beta == 0.0:
        return None
    if unit == "char":
        if lm is None:
            return WordFusion(None, tokenizer, alpha, beta, oov_penalty)
        return CharFusion(lm, tokenizer, alpha, beta, oov_penalty)
    if tokenizer.unit == "word":
        if lm is None:
            raise DecoderError("a word insertion bonus over a word model needs --lm")
        return WordTokenFusion(lm, tokenizer, alpha, beta, oov_penalty)
    return WordFusion(lm, tokenizer, alpha, beta, oov_penalty)
