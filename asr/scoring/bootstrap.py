"""Bootstrap confidence intervals for an error rate and a paired comparison of two systems.

Following Bisani & Ney (2004), "Bootstrap estimates for confidence intervals in ASR
performance evaluation" (ICASSP): utterances are drawn with replacement ``B`` times; on each
resample the error rate is ``sum(errors) / sum(reference words)`` over the drawn utterances.
The confidence interval is the percentile interval of those ``B`` rates. For two systems
scored on the same utterances, the same draws are applied to both, and the *probability of
improvement* is the share of resamples on which system B makes fewer errors than system A.
Draws come from ``numpy.random.default_rng(seed)``, so a seed gives the same figures on every
run and machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

# Draws per chunk (resamples x utterances): bounds memory at about 80 MB of int64 indices.
_CHUNK_DRAWS = 10_000_000


def _resampled_sums(
    columns: list[np.ndarray], resamples: int, seed: int
) -> Iterator[list[np.ndarray]]:
    """For chunks of resamples, the sums of each ``(utterances,)`` column over the draws."""
    n = len(columns[0])
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_DRAWS // max(n, 1))
    done = 0
    while done < resamples:
        size = min(per_chunk, resamples - done)
        idx = rng.integers(0, n, size=(size, n))
        yield [col[idx].sum(axis=1) for col in columns]
        done += size


def _rates(errors: np.ndarray, ref_len: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ref_len > 0, 100.0 * errors / np.maximum(ref_len, 1), np.nan)


def _check(resamples: int, confidence: float, n: int) -> None:
    if resamples < 1:
        raise ValueError("the number of bootstrap resamples must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("the confidence level must lie strictly between 0 and 1")
    if n == 0:
        raise ValueError("cannot bootstrap over zero utterances")


@dataclass
class BootstrapInterval:
    """An error rate (percent) with its bootstrap percentile interval."""

    rate: float
    low: float
    high: float
    std_error: float
    confidence: float
    resamples: int
    utterances: int
    seed: int

    def line(self, name: str = "WER") -> str:
        return (
            f"# bootstrap %{name} {self.rate:.2f}, {100 * self.confidence:g}% CI "
            f"[{self.low:.2f}, {self.high:.2f}], s.e. {self.std_error:.2f} "
            f"({self.resamples} resamples of {self.utterances} utterances, seed {self.seed})"
        )

    def to_dict(self) -> dict:
        return asdict(self)


def bootstrap_interval(
    errors: np.ndarray,
    ref_len: np.ndarray,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """Percentile bootstrap interval of ``100 * sum(errors) / sum(ref_len)``.

    ``errors``, ``ref_len``: ``(utterances,)`` per-utterance error and reference-unit counts.
    """
    errors = np.asarray(errors, dtype=np.int64)
    ref_len = np.asarray(ref_len, dtype=np.int64)
    _check(resamples, confidence, len(errors))
    rates = np.concatenate(
        [_rates(e, r) for e, r in _resampled_sums([errors, ref_len], resamples, seed)]
    )
    alpha = (1.0 - confidence) / 2
    low, high = np.nanquantile(rates, [alpha, 1.0 - alpha])
    total = int(ref_len.sum())
    rate = 100.0 * int(errors.sum()) / total if total else float("nan")
    return BootstrapInterval(
        rate, float(low), float(high), float(np.nanstd(rates, ddof=1)) if resamples > 1 else 0.0,
        confidence, resamples, len(errors), seed,
    )


@dataclass
class PairedComparison:
    """System A against system B on the same utterances (rates in percent)."""

    rate_a: float
    rate_b: float
    delta: float  # rate_a - rate_b: positive when B makes fewer errors
    delta_low: float
    delta_high: float
    prob_b_better: float  # share of resamples on which B's errors < A's
    prob_a_better: float
    confidence: float
    resamples: int
    utterances: int
    seed: int

    def lines(self, name_a: str = "A", name_b: str = "B", metric: str = "WER") -> list[str]:
        return [
            f"# paired bootstrap (Bisani & Ney 2004): {self.resamples} resamples of "
            f"{self.utterances} utterances, seed {self.seed}",
            f"# {metric}({name_a}) - {metric}({name_b}) = {self.delta:.2f}, "
            f"{100 * self.confidence:g}% CI [{self.delta_low:.2f}, {self.delta_high:.2f}]",
            f"# P({name_b} better than {name_a}) = {self.prob_b_better:.4f}; "
            f"P({name_a} better than {name_b}) = {self.prob_a_better:.4f}",
        ]

    def to_dict(self) -> dict:
        return asdict(self)


def paired_bootstrap(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    ref_len: np.ndarray,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Bisani & Ney's paired bootstrap: the same draws for both systems.

    ``errors_a``, ``errors_b``, ``ref_len``: ``(utterances,)``, utterance ``i`` being the same
    reference in all three.
    """
    errors_a = np.asarray(errors_a, dtype=np.int64)
    errors_b = np.asarray(errors_b, dtype=np.int64)
    ref_len = np.asarray(ref_len, dtype=np.int64)
    if not len(errors_a) == len(errors_b) == len(ref_len):
        raise ValueError("both systems must be scored on the same utterances")
    _check(resamples, confidence, len(ref_len))
    deltas = []
    b_better = 0
    a_better = 0
    for ea, eb, r in _resampled_sums([errors_a, errors_b, ref_len], resamples, seed):
        deltas.append(_rates(ea - eb, r))
        b_better += int(np.count_nonzero(eb < ea))
        a_better += int(np.count_nonzero(ea < eb))
    delta = np.concatenate(deltas)
    alpha = (1.0 - confidence) / 2
    low, high = np.nanquantile(delta, [alpha, 1.0 - alpha])
    total = int(ref_len.sum())

    def rate(e: np.ndarray) -> float:
        return 100.0 * int(e.sum()) / total if total else float("nan")

    return PairedComparison(
        rate(errors_a), rate(errors_b), rate(errors_a) - rate(errors_b), float(low), float(high),
        b_better / resamples, a_better / resamples, confidence, resamples, len(ref_len), seed,
    )
