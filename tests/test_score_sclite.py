"""Our totals equal NIST sclite's (Debian `sctk`, installed by tools/install_sctk.sh) on the
same transcripts: hand-made cases where unit-cost Levenshtein splits errors differently, and
random ones. Skipped when sclite is not installed."""

from __future__ import annotations

import jiwer
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr.scoring import score
from asr.scoring.sclite import find_sclite, plain_words, run_sclite

SCLITE = find_sclite()
pytestmark = pytest.mark.skipif(SCLITE is None, reason="sclite not installed (tools/install_sctk.sh)")


def ours(refs: dict[str, str], hyps: dict[str, str]) -> tuple:
    r = score(refs, hyps)
    return (r.wer.corr, r.wer.subs, r.wer.dels, r.wer.ins, r.wer.utts, r.wer.utts_with_errors)


def theirs(refs: dict[str, str], hyps: dict[str, str]) -> tuple:
    s = run_sclite(refs, hyps, SCLITE)
    return (s.corr, s.subs, s.dels, s.ins, s.sentences, s.sentence_errors)


HAND_MADE = {
    # ref, hyp: chosen where unit costs and sclite's costs (sub 4, ins/del 3) disagree, where
    # equal-cost alignments tie, and at the edges (empty sides).
    "shift": ("a b", "b c"),
    "shift-long": ("one two three four", "two three four five"),
    "swap": ("a b", "b a"),
    "repeat": ("the the cat", "the cat"),
    "extra": ("a", "x a y"),
    "all-wrong": ("a b c", "x y z w"),
    "empty-hyp": ("a b c", ""),
    "empty-ref": ("", "uh huh"),
    "both-empty": ("", ""),
    "exact": ("yes no yes no", "yes no yes no"),
    "case": ("Yes no", "yes No"),
    "unicode": ("naïve café", "naive café"),
    "digits": ("1 2 3 4 5 6", "1 2 4 3 5 7 6"),
    # sclite's costs do not minimise the number of errors: 6 here, where unit costs find 5.
    "more-errors": ("c c d a a a b", "a a d d b a"),
}


def test_hand_made_cases_equal_sclite_per_utterance() -> None:
    refs = {f"spk-{k}": r for k, (r, _) in HAND_MADE.items()}
    hyps = {f"spk-{k}": h for k, (_, h) in HAND_MADE.items()}
    assert ours(refs, hyps) == theirs(refs, hyps)
    per_utt = run_sclite(refs, hyps, SCLITE, per_utt=True).per_utt
    report = score(refs, hyps)
    d = report.details
    for i, utt in enumerate(d.utt_ids):
        assert tuple(d.utt_counts[i].tolist()) == per_utt[utt], utt
    # The cases are not vacuous: jiwer (unit costs) splits at least one differently.
    out = jiwer.process_words(HAND_MADE["shift"][0], HAND_MADE["shift"][1])
    assert (out.substitutions, out.deletions, out.insertions) == (2, 0, 0)
    assert d.utt_counts[d.utt_ids.index("spk-shift")].tolist() == [1, 0, 1, 1]
    out = jiwer.process_words(*HAND_MADE["more-errors"])
    assert out.substitutions + out.deletions + out.insertions == 5
    assert d.utt_counts[d.utt_ids.index("spk-more-errors")].tolist() == [3, 1, 3, 2]


def test_missing_hypotheses_equal_sclite_with_empty_lines() -> None:
    refs = {"a-1": "one two", "a-2": "three", "b-1": "four five six"}
    hyps = {"a-1": "one"}
    report = score(refs, hyps)
    assert report.missing == ["a-2", "b-1"]
    assert ours(refs, hyps) == theirs(refs, {u: hyps.get(u, "") for u in refs})


words = st.sampled_from(["a", "b", "c", "d", "aa", "ab", "yes", "no", "Yes"])
texts = st.lists(words, max_size=15).map(" ".join)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=30))
def test_random_transcripts_equal_sclite(pairs) -> None:
    refs = {f"s{i % 3}-{i:03d}": r for i, (r, _) in enumerate(pairs)}
    hyps = {f"s{i % 3}-{i:03d}": h for i, (_, h) in enumerate(pairs)}
    assert all(plain_words(t) for t in (*refs.values(), *hyps.values()))
    assert ours(refs, hyps) == theirs(refs, hyps)


def test_many_random_utterances_at_once() -> None:
    """One large seeded run (2,000 pairs, small vocabulary: many ties), per utterance."""
    import numpy as np

    rng = np.random.default_rng(7)
    vocab = np.array(["a", "b", "c", "d", "e"])
    refs, hyps = {}, {}
    for i in range(2000):
        refs[f"x-{i:05d}"] = " ".join(rng.choice(vocab, size=int(rng.integers(0, 20))))
        hyps[f"x-{i:05d}"] = " ".join(rng.choice(vocab, size=int(rng.integers(0, 20))))
    expected = run_sclite(refs, hyps, SCLITE, per_utt=True)
    d = score(refs, hyps).details
    got = {u: tuple(d.utt_counts[i].tolist()) for i, u in enumerate(d.utt_ids)}
    assert got == expected.per_utt
    assert ours(refs, hyps) == theirs(refs, hyps)


def test_plain_words_flags_tokens_sclite_treats_specially() -> None:
    assert plain_words("yes no don't x-ray")
    for special in ("(uh)", "@", "{ a / b }", "-frag", "frag-"):
        assert not plain_words(f"a {special} b")


def test_character_counts_equal_sclite_on_character_tokens() -> None:
    """CER runs the same alignment over characters (the space between words is a unit):
    sclite, given the characters as tokens with '_' for the space, counts the same."""
    from asr.scoring import char_errors

    refs = {"c-1": "the cat sat", "c-2": "ab cd", "c-3": "abcd", "c-4": "hello"}
    hyps = {"c-1": "the bat  sat on", "c-2": "abcd", "c-3": "ab cd", "c-4": ""}
    as_tokens = lambda t: " ".join("_" if ch == " " else ch for ch in " ".join(t.split()))  # noqa: E731
    expected = run_sclite({u: as_tokens(t) for u, t in refs.items()},
                          {u: as_tokens(t) for u, t in hyps.items()}, SCLITE)
    got = char_errors(list(refs.values()), list(hyps.values()))
    assert (got.corr, got.subs, got.dels, got.ins) == (expected.corr, expected.subs, expected.dels, expected.ins)
    assert got.ref_len == expected.ref_words
