"""Word (or character) alignment with sclite's costs and tie-breaking.

NIST sclite aligns a reference with a hypothesis by dynamic programming with the costs
correct 0, substitution 4, insertion 3 and deletion 3 (``wwd_WORD`` in SCTK), not with the
unit costs of Levenshtein distance. Both give the same number of errors far more often than
not, but they can split them differently (unit costs see ``a b`` -> ``b c`` as two
substitutions; sclite as one deletion and one insertion), and so can sclite's tie-breaking
among alignments of equal cost. To report exactly what sclite reports, the recursion below
follows SCTK's: at every cell a substitution (or match) wins when its cost is no greater than
both others, then a deletion when strictly cheaper than an insertion, else the insertion; the
first row holds insertions, the first column deletions, and the path is traced back from the
bottom-right cell.

All pairs are aligned in one compiled loop (numba) over integer unit ids (see
:mod:`asr.scoring.units`). Only a band of diagonals around the two sequences' length
difference is filled (Ukkonen's cut-off, widened until it provably holds every optimal path),
so the work grows with length times errors rather than length squared; the result is the
full matrix's, tie-breaks included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

# Edit operations as stored in :attr:`Alignments.ops`.
CORRECT, SUBSTITUTION, DELETION, INSERTION = 0, 1, 2, 3
OP_LETTERS = "CSDI"

SUB_COST, INS_COST, DEL_COST = 4, 3, 3


@dataclass
class Alignments:
    """The alignments of ``P`` utterance pairs, flattened.

    ``counts``: ``(P, 4)`` int64, the numbers of correct, substituted, deleted and inserted
    units per pair (columns in the order of the op codes). Pair ``p``'s operations are
    ``ops[starts[p] : starts[p] + lengths[p]]``; for each, ``ref_pos`` / ``hyp_pos`` index the
    flat unit arrays given to :func:`align_pairs` (``-1`` where the op has no unit on that
    side: deletions have no hypothesis unit, insertions no reference unit).
    """

    counts: np.ndarray  # (P, 4) int64
    ops: np.ndarray  # (total,) int8
    ref_pos: np.ndarray  # (total,) int64
    hyp_pos: np.ndarray  # (total,) int64
    starts: np.ndarray  # (P,) int64
    lengths: np.ndarray  # (P,) int64

    def pair_ops(self, p: int) -> slice:
        """The slice of the flat op arrays that belongs to pair ``p``."""
        start = int(self.starts[p])
        return slice(start, start + int(self.lengths[p]))


def _jit(func):
    """Compile with numba, caching the machine code next to this file (or in numba's user
    cache) so that only the first run pays the few seconds of compilation. Where no cache
    directory is writable, compile in memory on every start instead of failing."""
    try:
        return numba.njit(cache=True, nogil=True)(func)
    except RuntimeError:
        return numba.njit(nogil=True)(func)


_INF = 1 << 40
_FIRST_HALF_WIDTH = 4


@_jit
def _half_width_for(cost, delta):  # pragma: no cover - compiled
    """The least half-width k with 3 * (|delta| + 2k + 2) > cost."""
    return (cost // 3 - abs(delta) - 2) // 2 + 1


@_jit
def _band_dp(ref, r0, n, hyp, h0, m, lo, hi, back, rows):  # pragma: no cover - compiled
    """Fill the back pointers of the cells with ``lo <= b - a <= hi`` and return the cost of
    reaching ``(n, m)``. Row ``a`` keeps cell ``(a, b)`` at index ``b - a - lo``; cells outside
    the band count as unreachable. ``rows``: ``(2, >= hi - lo + 2)`` scratch costs."""
    w = hi - lo + 1
    prev = rows[0]
    cur = rows[1]
    prev[w] = _INF  # the right edge: cell (a - 1, a + hi) lies outside the band
    cur[w] = _INF
    for b in range(0, min(m, hi) + 1):
        prev[b - lo] = INS_COST * b
        back[b - lo] = 2
    for b in range(min(m, hi) + 1, w + lo):
        prev[b - lo] = _INF
    for a in range(1, n + 1):
        row = a * w
        unit = ref[r0 + a - 1]
        b_first = max(0, a + lo)
        j_last = min(m, a + hi) - a - lo
        j_first = b_first - a - lo
        left = _INF  # the cost of (a, b - 1); unreachable when outside the band
        if b_first == 0:
            # Cell (a, 0): only a deletion reaches it; row a-1 holds (a-1, 0) at j + 1.
            left = prev[j_first + 1] + DEL_COST
            cur[j_first] = left
            back[row + j_first] = 1
            j_first += 1
        # Row a-1 holds every cell this row reads: (a-1, b-1) at j and (a-1, b) at j + 1.
        for j in range(j_first, j_last + 1):
            # Unsigned indices spare numba's negative-index wraparound test on every access.
            uj = np.uint64(j)
            sub = prev[uj] + (0 if unit == hyp[np.uint64(h0 + j + a + lo - 1)] else SUB_COST)
            dele = prev[uj + np.uint64(1)] + DEL_COST  # index w holds _INF
            ins = left + INS_COST
            # SCTK's choice: the diagonal when no dearer than both others; otherwise a deletion
            # only when strictly cheaper than the insertion (an equal-cost tie goes to the
            # insertion). Written without branches: which way wins is unpredictable data.
            by_del = (dele < sub) & (dele < ins)
            by_ins = (ins < sub) & (ins <= dele)
            left = min(sub, dele, ins)
            back[np.uint64(row + j)] = by_del + 2 * by_ins
            cur[uj] = left
        if j_last + 1 < w:
            cur[j_last + 1] = _INF
        prev, cur = cur, prev
    return prev[m - n - lo]


@_jit
def _align_range(ref, ref_off, hyp, hyp_off, first, last, keep_ops, counts, ops, ref_pos, hyp_pos, starts, lengths):  # pragma: no cover - compiled
    """Align pairs ``first`` .. ``last - 1``. Pair ``p``'s path is written at the end of its
    slot ``[ref_off[p] + hyp_off[p], ref_off[p + 1] + hyp_off[p + 1])`` of the op arrays, which
    is long enough for any path (at most n + m steps) and known before the path is."""
    max_row = 1
    for p in range(first, last):
        max_row = max(max_row, ref_off[p + 1] - ref_off[p] + hyp_off[p + 1] - hyp_off[p] + 1)
    rows = np.empty((2, max_row + 2), dtype=np.int64)
    # Back pointers of the current band (0 diagonal, 1 deletion, 2 insertion); grown on demand,
    # so memory follows the widest band actually needed, not the longest pair squared.
    back = np.empty(4096, dtype=np.uint8)
    k_guess = _FIRST_HALF_WIDTH
    for p in range(first, last):
        r0 = ref_off[p]
        h0 = hyp_off[p]
        n = ref_off[p + 1] - r0
        m = hyp_off[p + 1] - h0
        delta = m - n
        # Ukkonen's band: an alignment through diagonal d = b - a costs at least
        # 3 * (|d| + |d - delta|), so with half-width k every cell outside the band costs at
        # least 3 * (|delta| + 2k + 2). When the best path inside the band is cheaper than
        # that, no optimal path leaves the band, and the costs, tie-breaks and traced path
        # are exactly those of the full matrix. Otherwise the in-band cost, an upper bound on
        # the optimum, says how wide a band is sure to be enough. The first guess is the
        # width the previous pair needed: neighbouring utterances tend to err alike.
        k = k_guess
        while True:
            lo = min(0, delta) - k
            hi = max(0, delta) + k
            full = lo <= -n and hi >= m
            if full:
                lo = -n
                hi = m
            if (n + 1) * (hi - lo + 1) > back.shape[0]:
                back = np.empty(2 * (n + 1) * (hi - lo + 1), dtype=np.uint8)
            cost = _band_dp(ref, r0, n, hyp, h0, m, lo, hi, back, rows)
            if full or cost < 3 * (abs(delta) + 2 * k + 2):
                break
            k = max(k + 1, _half_width_for(cost, delta))
        k_guess = max(1, _half_width_for(cost, delta))
        w = hi - lo + 1
        # Trace back from the bottom-right cell, filling the slot from its end.
        slot_end = r0 + h0 + n + m
        k = slot_end
        a = n
        b = m
        while a > 0 or b > 0:
            how = back[a * w + b - a - lo]
            if how == 0:
                op = CORRECT if ref[r0 + a - 1] == hyp[h0 + b - 1] else SUBSTITUTION
                ra = r0 + a - 1
                hb = h0 + b - 1
                a -= 1
                b -= 1
            elif how == 1:
                op = DELETION
                ra = r0 + a - 1
                hb = -1
                a -= 1
            else:
                op = INSERTION
                ra = -1
                hb = h0 + b - 1
                b -= 1
            counts[p, op] += 1
            k -= 1
            if keep_ops:
                ops[k] = op
                ref_pos[k] = ra
                hyp_pos[k] = hb
        starts[p] = k
        lengths[p] = slot_end - k


def align_pairs(
    ref: np.ndarray,
    ref_offsets: np.ndarray,
    hyp: np.ndarray,
    hyp_offsets: np.ndarray,
    keep_ops: bool = True,
) -> Alignments:
    """Align ``P`` pairs of unit-id sequences given flat.

    ``ref``: ``(total_ref,)`` integer unit ids (any integer dtype), pair ``p`` being
    ``ref[ref_offsets[p] : ref_offsets[p + 1]]`` (``ref_offsets``: ``(P + 1,)``); likewise
    ``hyp``. Equal ids are equal units. With ``keep_ops=False`` only ``counts`` is filled (the
    op arrays are empty), which saves memory when only totals are wanted.
    """
    ref = np.ascontiguousarray(ref)
    hyp = np.ascontiguousarray(hyp)
    # Any one integer type will do (characters stay uint32: converting 10 million code points
    # costs more than aligning them); mixed or non-integer inputs become int64.
    if ref.dtype != hyp.dtype or not np.issubdtype(ref.dtype, np.integer):
        ref = ref.astype(np.int64)
        hyp = hyp.astype(np.int64)
    ref_offsets = np.ascontiguousarray(ref_offsets, dtype=np.int64)
    hyp_offsets = np.ascontiguousarray(hyp_offsets, dtype=np.int64)
    if ref_offsets.shape != hyp_offsets.shape or ref_offsets.ndim != 1 or len(ref_offsets) == 0:
        raise ValueError("ref_offsets and hyp_offsets must both have shape (pairs + 1,)")
    n_pairs = len(ref_offsets) - 1
    capacity = len(ref) + len(hyp) if keep_ops else 0
    counts = np.zeros((n_pairs, 4), dtype=np.int64)
    ops = np.full(capacity, -1, dtype=np.int8)
    ref_pos = np.empty(capacity, dtype=np.int64)
    hyp_pos = np.empty(capacity, dtype=np.int64)
    starts = np.zeros(n_pairs, dtype=np.int64)
    lengths = np.zeros(n_pairs, dtype=np.int64)
    _align_range(
        ref, ref_offsets, hyp, hyp_offsets, 0, n_pairs, keep_ops,
        counts, ops, ref_pos, hyp_pos, starts, lengths,
    )
    if not keep_ops:
        empty = np.zeros(n_pairs, dtype=np.int64)
        return Alignments(counts, ops, ref_pos, hyp_pos, empty, empty.copy())
    # Each path ends its slot; squeeze out the unused heads of the slots.
    used = ops >= 0
    new_starts = np.zeros(n_pairs, dtype=np.int64)
    np.cumsum(lengths[:-1], out=new_starts[1:])
    return Alignments(counts, ops[used], ref_pos[used], hyp_pos[used], new_starts, lengths)
