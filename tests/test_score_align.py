"""asr.scoring.edit_distance: sclite's costs and tie-breaks, the band's exactness, the flat layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.scoring.edit_distance import OP_LETTERS, align_pairs
from asr.scoring.units import encode_chars, encode_words


def full_matrix(ref: list[int], hyp: list[int]) -> str:
    """The whole (n+1) x (m+1) dynamic programme with SCTK's costs (sub 4, ins 3, del 3) and
    tie-breaks, written plainly as a reference for the banded, compiled one."""
    n, m = len(ref), len(hyp)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    how = [[""] * (m + 1) for _ in range(n + 1)]
    for b in range(1, m + 1):
        cost[0][b], how[0][b] = 3 * b, "I"
    for a in range(1, n + 1):
        cost[a][0], how[a][0] = 3 * a, "D"
        for b in range(1, m + 1):
            same = ref[a - 1] == hyp[b - 1]
            sub = cost[a - 1][b - 1] + (0 if same else 4)
            dele = cost[a - 1][b] + 3
            ins = cost[a][b - 1] + 3
            if sub <= dele and sub <= ins:
                cost[a][b], how[a][b] = sub, "C" if same else "S"
            elif dele < ins:
                cost[a][b], how[a][b] = dele, "D"
            else:
                cost[a][b], how[a][b] = ins, "I"
    path, a, b = [], n, m
    while a or b:
        op = how[a][b]
        path.append(op)
        a -= op in "CSD"
        b -= op in "CSI"
    return "".join(reversed(path))


def align_many(pairs: list[tuple[list[int], list[int]]], keep_ops: bool = True):
    refs = [np.asarray(r, dtype=np.int64) for r, _ in pairs]
    hyps = [np.asarray(h, dtype=np.int64) for _, h in pairs]
    offsets = lambda seqs: np.cumsum([0] + [len(s) for s in seqs])  # noqa: E731
    flat = lambda seqs: np.concatenate(seqs) if seqs else np.zeros(0, np.int64)  # noqa: E731
    return align_pairs(flat(refs), offsets(refs), flat(hyps), offsets(hyps), keep_ops=keep_ops)


def ops_of(alignments, p: int) -> str:
    return "".join(OP_LETTERS[o] for o in alignments.ops[alignments.pair_ops(p)])


@pytest.mark.parametrize(
    ("ref", "hyp", "path"),
    [
        # Unit-cost Levenshtein calls this two substitutions; sclite's costs (4 > 3) make it a
        # deletion and an insertion.
        ([1, 2], [2, 3], "DCI"),
        ([1, 2, 3], [1, 3], "CDC"),
        ([1, 2], [3, 4], "SS"),
        ([], [5, 6], "II"),
        ([5, 6], [], "DD"),
        ([], [], ""),
        ([1], [2, 1, 3], "ICI"),
        # Equal-cost paths: DCI and ICD both cost 6. At the last cell a deletion and an
        # insertion tie, and SCTK takes the insertion, so the path is DCI.
        ([1, 2], [2, 1], "DCI"),
        # Which of two equal words is deleted: the diagonal wins ties, so the last one matches.
        ([1, 1], [1], "DC"),
    ],
)
def test_sclite_costs_and_tie_breaks(ref, hyp, path) -> None:
    assert full_matrix(ref, hyp) == path
    assert ops_of(align_many([(ref, hyp)]), 0) == path


small_seqs = st.lists(st.integers(0, 3), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(small_seqs, small_seqs), min_size=1, max_size=6))
def test_band_equals_full_matrix(pairs) -> None:
    """Small alphabets make many ties and wide bands; every path must equal the full one."""
    alignments = align_many(pairs)
    for p, (ref, hyp) in enumerate(pairs):
        expected = full_matrix(ref, hyp)
        assert ops_of(alignments, p) == expected
        counts = [expected.count(x) for x in OP_LETTERS]
        assert alignments.counts[p].tolist() == counts


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_long_pairs_that_force_the_band_to_widen(data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    ref = rng.integers(0, 3, size=int(rng.integers(50, 200))).tolist()
    if data.draw(st.booleans()):
        hyp = rng.integers(0, 3, size=int(rng.integers(0, 250))).tolist()  # unrelated: wide band
    else:
        hyp = [w for w in ref if rng.random() > 0.1]  # close: narrow band
    alignments = align_many([(ref, hyp), (hyp, ref)])
    assert ops_of(alignments, 0) == full_matrix(ref, hyp)
    assert ops_of(alignments, 1) == full_matrix(hyp, ref)


def test_positions_point_at_the_aligned_units() -> None:
    pairs = [([10, 11, 12], [10, 13, 12, 14]), ([], [15]), ([16, 17], [])]
    a = align_many(pairs)
    ref_flat = np.array([10, 11, 12, 16, 17])
    hyp_flat = np.array([10, 13, 12, 14, 15])
    assert [ops_of(a, p) for p in range(3)] == ["CSCI", "I", "DD"]
    assert a.lengths.tolist() == [4, 1, 2] and a.starts.tolist() == [0, 4, 5]
    s = a.pair_ops(0)
    assert ref_flat[a.ref_pos[s][:3]].tolist() == [10, 11, 12] and a.ref_pos[s][3] == -1
    assert hyp_flat[a.hyp_pos[s]].tolist() == [10, 13, 12, 14]
    assert a.hyp_pos[a.pair_ops(2)].tolist() == [-1, -1]
    counts_only = align_many(pairs, keep_ops=False)
    np.testing.assert_array_equal(counts_only.counts, a.counts)
    assert len(counts_only.ops) == 0


def test_bad_offsets_are_rejected() -> None:
    with pytest.raises(ValueError, match="offsets"):
        align_pairs(np.zeros(2), np.array([0, 2]), np.zeros(1), np.array([0, 1, 1]))


def test_word_and_char_units() -> None:
    ref, hyp, vocab = encode_words([["a", "bb"], []], [["bb", "c"], ["a"]])
    assert vocab == ["a", "bb", "c"]
    assert ref.ids.tolist() == [0, 1] and ref.offsets.tolist() == [0, 2, 2]
    assert hyp.ids.tolist() == [1, 2, 0] and hyp.offsets.tolist() == [0, 2, 3]
    chars = encode_chars([["ab", "c"], [], ["é"]])
    assert chars.ids.tolist() == [ord("a"), ord("b"), ord(" "), ord("c"), ord("é")]
    assert chars.lengths().tolist() == [4, 0, 1]
