"""asr.scoring.bootstrap: seeded percentile intervals and Bisani & Ney's paired comparison."""

from __future__ import annotations

import numpy as np
import pytest

from asr.scoring import bootstrap_interval, paired_bootstrap


def test_interval_is_seeded_and_brackets_the_rate() -> None:
    rng = np.random.default_rng(1)
    ref_len = rng.integers(5, 20, size=300)
    errors = rng.binomial(ref_len, 0.1)
    a = bootstrap_interval(errors, ref_len, resamples=500, seed=3)
    b = bootstrap_interval(errors, ref_len, resamples=500, seed=3)
    c = bootstrap_interval(errors, ref_len, resamples=500, seed=4)
    assert a == b and (a.low, a.high) != (c.low, c.high)
    assert a.rate == pytest.approx(100 * errors.sum() / ref_len.sum())
    assert a.low < a.rate < a.high
    # About 1.96 standard errors each side for a 95 % interval of a near-normal statistic.
    assert (a.high - a.low) == pytest.approx(2 * 1.96 * a.std_error, rel=0.2)
    assert a.line().startswith(f"# bootstrap %WER {a.rate:.2f}, 95% CI [")
    assert "500 resamples of 300 utterances, seed 3" in a.line()


def test_interval_narrows_with_more_utterances() -> None:
    rng = np.random.default_rng(2)
    few = rng.binomial(10, 0.2, size=50)
    many = rng.binomial(10, 0.2, size=5000)
    w_few = bootstrap_interval(few, np.full(50, 10), 400)
    w_many = bootstrap_interval(many, np.full(5000, 10), 400)
    assert (w_many.high - w_many.low) < (w_few.high - w_few.low) / 5


def test_interval_is_a_point_when_every_utterance_has_the_same_rate() -> None:
    iv = bootstrap_interval(np.full(40, 2), np.full(40, 10), 200)
    assert iv.low == iv.high == iv.rate == pytest.approx(20.0)


def test_paired_comparison() -> None:
    rng = np.random.default_rng(5)
    ref_len = rng.integers(5, 15, size=400)
    a = rng.binomial(ref_len, 0.20)
    better = np.maximum(a - rng.binomial(1, 0.5, size=400), 0)  # B fixes about half an error each
    res = paired_bootstrap(a, better, ref_len, resamples=500, seed=0)
    assert res.prob_b_better > 0.99 and res.prob_a_better < 0.01
    assert res.delta == pytest.approx(res.rate_a - res.rate_b) and res.delta > 0
    assert res.delta_low > 0
    same = paired_bootstrap(a, a, ref_len, resamples=200)
    assert same.prob_b_better == same.prob_a_better == 0.0 and same.delta == 0.0
    swapped = paired_bootstrap(better, a, ref_len, resamples=500, seed=0)
    assert swapped.prob_a_better == res.prob_b_better  # the same draws, sides exchanged
    lines = res.lines("base", "new")
    assert lines[1].startswith("# WER(base) - WER(new) = ")
    assert lines[2].startswith(f"# P(new better than base) = {res.prob_b_better:.4f}")


def test_noisy_difference_is_not_called_significant() -> None:
    rng = np.random.default_rng(9)
    ref_len = np.full(100, 10)
    a = rng.binomial(10, 0.2, size=100)
    b = rng.binomial(10, 0.2, size=100)  # the same system, other noise
    res = paired_bootstrap(a, b, ref_len, resamples=1000, seed=1)
    assert 0.02 < res.prob_b_better < 0.98
    assert res.delta_low < 0 < res.delta_high


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"resamples": 0}, "at least 1"), ({"confidence": 1.0}, "between 0 and 1")],
)
def test_bad_settings(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(np.ones(3), np.ones(3), **kwargs)
    with pytest.raises(ValueError, match="zero utterances"):
        bootstrap_interval(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="same utterances"):
        paired_bootstrap(np.ones(3), np.ones(4), np.ones(3))
