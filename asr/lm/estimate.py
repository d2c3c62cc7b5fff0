"""A small built-in n-gram estimator: interpolated modified Kneser-Ney, as KenLM's ``lmplz``.

For corpora of a few thousand sentences (tests, digit strings, command words) where building
KenLM is not worth it. It follows lmplz (Heafield et al. 2013) step by step, so that both give
the same ARPA probabilities on the same text:

- counts: each sentence is ``<s> w1 ... wk </s>``; the highest order keeps raw counts, and so
  do lower-order n-grams that start with ``<s>`` (nothing can precede them); every other
  lower-order n-gram gets its *adjusted* count, the number of distinct words seen before it;
- discounts per order from the counts of counts ``t1..t4`` of the adjusted counts (lmplz
  takes one n-gram per order, the last in its sort order, at its raw count here, so its
  discounts for middle orders can differ a little; with its discounts the models agree):
  ``Y = t1 / (t1 + 2 t2)``, ``D_k = k - (k + 1) Y t_(k+1) / t_k`` for ``k = 1, 2, 3+``; when
  they cannot be estimated (tiny corpora) the fallback ``0.5, 1, 1.5`` (lmplz's
  ``--discount_fallback``);
- ``p(w | c) = (a(c w) - D(a)) / a(c .) + gamma(c) p(w | c')`` with ``gamma(c)`` the discounted
  mass, down to unigrams interpolated with the uniform distribution over the vocabulary
  (``<unk>`` and ``</s>`` included, ``<s>`` excluded). ``gamma(c)`` is written as the ARPA
  back-off weight of ``c``, which makes the interpolated model an exact back-off model.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from asr.lm.arpa import BOS, EOS, NEVER, UNK, NgramLM
from asr.lm.errors import LMError

log = logging.getLogger("asr.lm")

FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


def _discounts(adjusted: Iterable[int], order: int) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts ``(D1, D2, D3+)`` from one order's adjusted counts."""
    counts_of_counts = Counter(adjusted)
    t = [counts_of_counts.get(k, 0) for k in range(5)]  # t[k]: n-grams seen exactly k times
    try:
        y = t[1] / (t[1] + 2 * t[2])
        discounts = tuple(k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3))
    except ZeroDivisionError:  # t1..t3 not all observed
        discounts = ()
    # lmplz's conditions: t1..t3 observed and 0 <= D_k <= k (0 would leave no back-off mass).
    if len(discounts) != 3 or any(not 0 < d <= k for k, d in enumerate(discounts, 1)):
        log.info("order %d: discounts cannot be estimated from counts of counts %s; using %s",
                 order, t[1:], FALLBACK_DISCOUNTS)
        return FALLBACK_DISCOUNTS
    return discounts  # type: ignore[return-value]


def estimate_kneser_ney(sentences: Iterable[Sequence[str]], order: int,
                        discounts: dict[int, tuple[float, float, float]] | None = None) -> NgramLM:
    """An interpolated modified Kneser-Ney model of ``order`` from tokenised sentences.

    ``discounts`` maps an order (1 = unigrams) to ``(D1, D2, D3+)`` to use instead of the
    estimated ones (for example lmplz's, which it prints).
    """
    if order < 1:
        raise LMError(f"n-gram order {order}: give 1 or more")
    vocab = [UNK, BOS, EOS]
    index = {w: i for i, w in enumerate(vocab)}
    bos, eos = index[BOS], index[EOS]
    # adjusted[n-1]: n-gram -> count (raw for the highest order and <s>-initial n-grams).
    adjusted: list[Counter[tuple[int, ...]]] = [Counter() for _ in range(order)]
    n_sentences = 0
    for words in sentences:
        n_sentences += 1
        ids = [bos]
        for word in words:
            if word in (BOS, EOS):
                raise LMError(f"sentence {n_sentences}: {word} inside the text; give plain words")
            if word not in index:
                index[word] = len(vocab)
                vocab.append(word)
            ids.append(index[word])
        ids.append(eos)
        for j in range(1, len(ids)):
            gram = tuple(ids[max(0, j - order + 1) : j + 1])
            adjusted[len(gram) - 1][gram] += 1
    if n_sentences == 0:
        raise LMError("no sentences to estimate a language model from")
    # Lower orders: the number of distinct left extensions.
    for n in range(order - 1, 0, -1):
        for gram in adjusted[n]:
            adjusted[n - 1][gram[1:]] += 1
    # <s> is a context, never predicted: it has no unigram count of its own.
    adjusted[0].pop((bos,), None)

    probs: list[dict[tuple[int, ...], float]] = [{} for _ in range(order)]
    gammas: dict[tuple[int, ...], float] = {}
    interpolated: list[dict[tuple[int, ...], float]] = [{} for _ in range(order)]
    n_predicted = len(vocab) - 1  # the uniform base distribution: every word but <s>
    for n in range(1, order + 1):
        table = adjusted[n - 1]
        d1, d2, d3 = (discounts or {}).get(n) or _discounts(table.values(), n)
        totals: dict[tuple[int, ...], float] = defaultdict(float)
        mass: dict[tuple[int, ...], float] = defaultdict(float)
        for gram, a in table.items():
            totals[gram[:-1]] += a
            mass[gram[:-1]] += d1 if a == 1 else d2 if a == 2 else d3
        for ctx, total in totals.items():
            gammas[ctx] = mass[ctx] / total
        for gram, a in table.items():
            ctx = gram[:-1]
            discounted = (a - (d1 if a == 1 else d2 if a == 2 else d3)) / totals[ctx]
            lower = 1.0 / n_predicted if n == 1 else interpolated[n - 2][gram[1:]]
            interpolated[n - 1][gram] = discounted + gammas[ctx] * lower
        if n == 1:
            for w in range(len(vocab)):
                if w != bos and (w,) not in interpolated[0]:
                    interpolated[0][(w,)] = gammas[()] / n_predicted  # <unk>, unseen words
    for n, table in enumerate(interpolated):
        probs[n] = {gram: math.log10(p) for gram, p in table.items()}
    probs[0][(bos,)] = NEVER
    # A back-off weight belongs to every n-gram that is the context of a longer one.
    bows = {ctx: math.log10(g) for ctx, g in gammas.items() if ctx and g > 0}
    return NgramLM(vocab, probs, bows)
