"""Per-utterance word alignments: Kaldi's ``per_utt`` lines and the most frequent errors.

Kept as the flat arrays the aligner produced, so that a report over 100,000 utterances costs
nothing until its details are asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from asr.scoring.edit_distance import (
    CORRECT,
    DELETION,
    INSERTION,
    OP_LETTERS,
    SUBSTITUTION,
    Alignments,
)
from asr.scoring.units import Units

EPSILON = "***"  # stands for the missing side of an insertion or deletion, as in Kaldi's per_utt


@dataclass
class OpCount:
    """How often one edit occurred: ``ref`` -> ``hyp`` (``***`` for the empty side)."""

    kind: str  # "correct", "substitution", "deletion" or "insertion"
    ref: str
    hyp: str
    count: int


def _gather(ids: np.ndarray, positions: np.ndarray, empty: int) -> np.ndarray:
    """``ids[positions]``, with ``empty`` where a position is -1 (no unit on that side)."""
    out = np.full(len(positions), empty, dtype=np.int64)
    present = positions >= 0
    out[present] = ids[positions[present]]
    return out


_KINDS = {CORRECT: "correct", SUBSTITUTION: "substitution", DELETION: "deletion", INSERTION: "insertion"}


@dataclass
class WordDetails:
    """Word alignments of the utterances ``utt_ids`` (in report order)."""

    utt_ids: list[str]
    speakers: list[str]
    alignments: Alignments
    ref: Units
    hyp: Units
    vocab: list[str]

    @property
    def utt_counts(self) -> np.ndarray:
        """``(utterances, 4)`` int64: correct, substituted, deleted, inserted words."""
        return self.alignments.counts

    @property
    def utt_errors(self) -> np.ndarray:
        """``(utterances,)`` int64 word errors (substitutions + deletions + insertions)."""
        c = self.alignments.counts
        return c[:, SUBSTITUTION] + c[:, DELETION] + c[:, INSERTION]

    @property
    def utt_ref_len(self) -> np.ndarray:
        """``(utterances,)`` int64 reference words."""
        return self.ref.lengths()

    def utterance(self, i: int) -> dict:
        """Utterance ``i``'s alignment: aligned ``ref`` / ``hyp`` words, ``op`` letters, ``csid``."""
        span = self.alignments.pair_ops(i)
        ops = self.alignments.ops[span].tolist()
        words = [*self.vocab, EPSILON]
        ref = [words[w] for w in _gather(self.ref.ids, self.alignments.ref_pos[span], len(self.vocab))]
        hyp = [words[w] for w in _gather(self.hyp.ids, self.alignments.hyp_pos[span], len(self.vocab))]
        c, s, d, n_ins = (int(x) for x in self.alignments.counts[i])
        return {
            "ref": ref,
            "hyp": hyp,
            "op": [OP_LETTERS[op] for op in ops],
            "csid": [c, s, n_ins, d],
        }

    def per_utt_lines(self, only_errors: bool = False) -> Iterator[str]:
        """Kaldi's ``per_utt``: ``utt ref ...``, ``utt hyp ...``, ``utt op ...``, ``utt #csid c s i d``.

        Columns are padded to a common width so that the three rows line up.
        """
        errors = self.utt_errors
        for i, utt in enumerate(self.utt_ids):
            if only_errors and errors[i] == 0:
                continue
            u = self.utterance(i)
            widths = [max(len(r), len(h)) for r, h in zip(u["ref"], u["hyp"], strict=True)]
            for name in ("ref", "hyp", "op"):
                cells = " ".join(t.ljust(w) for t, w in zip(u[name], widths, strict=True))
                yield f"{utt} {name:<3} {cells}".rstrip()
            yield f"{utt} #csid " + " ".join(str(x) for x in u["csid"])

    def op_counts(self, top: int | None = None) -> list[OpCount]:
        """Every distinct edit with its count (with ``top``: only the ``top`` most frequent of
        each kind), by kind (correct, deletion, insertion, substitution), then most frequent
        first, then alphabetically."""
        a = self.alignments
        eps = len(self.vocab)  # the id of the empty side
        v = eps + 1
        ref_ids = _gather(self.ref.ids, a.ref_pos, eps)
        hyp_ids = _gather(self.hyp.ids, a.hyp_pos, eps)
        # One integer key per (op, ref word, hyp word): np.unique then counts them in C.
        keys = (a.ops.astype(np.int64) * v + ref_ids) * v + hyp_ids
        uniq, counts = np.unique(keys, return_counts=True)
        if top is not None:
            # Only entries that can make a kind's top list reach Python: those at least as
            # frequent as its top-th count (ties at the threshold are sorted by word below).
            kinds = uniq // (v * v)
            keep = np.zeros(len(uniq), dtype=bool)
            for kind in _KINDS:
                mine = kinds == kind
                if top > 0 and mine.any():
                    kth = np.sort(counts[mine])[-min(top, int(mine.sum()))]
                    keep |= mine & (counts >= kth)
            uniq, counts = uniq[keep], counts[keep]
        words = [*self.vocab, EPSILON]
        out = []
        for key, count in zip(uniq.tolist(), counts.tolist(), strict=True):
            rest, hyp = divmod(key, v)
            op, ref = divmod(rest, v)
            out.append(OpCount(_KINDS[op], words[ref], words[hyp], count))
        out.sort(key=lambda o: (o.kind, -o.count, o.ref, o.hyp))
        if top is not None:
            taken = dict.fromkeys(_KINDS.values(), 0)
            kept = []
            for o in out:
                if taken[o.kind] < top:
                    taken[o.kind] += 1
                    kept.append(o)
            out = kept
        return out

    def ops_lines(self) -> list[str]:
        """Kaldi's ``ops`` file: ``kind ref hyp count`` for every distinct edit."""
        entries = self.op_counts()
        width = max((max(len(o.ref), len(o.hyp)) for o in entries), default=0)
        return [f"{o.kind:<12} {o.ref:<{width}} {o.hyp:<{width}} {o.count}" for o in entries]
