"""Edit counts and the one-line summaries Kaldi's ``compute-wer`` prints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.scoring.edit_distance import DELETION, INSERTION, SUBSTITUTION


@dataclass
class ErrorCounts:
    """Edit counts over a set of utterances (``ref_len``: reference words or characters)."""

    ref_len: int = 0
    ins: int = 0
    dels: int = 0
    subs: int = 0
    utts: int = 0
    utts_with_errors: int = 0

    @classmethod
    def from_op_counts(cls, counts: np.ndarray) -> ErrorCounts:
        """Sum ``(utterances, 4)`` per-utterance counts (correct, sub, del, ins columns)."""
        counts = np.asarray(counts, dtype=np.int64).reshape(-1, 4)
        c, s, d, i = (int(x) for x in counts.sum(axis=0))
        errors = counts[:, SUBSTITUTION] + counts[:, DELETION] + counts[:, INSERTION]
        return cls(
            ref_len=c + s + d,
            ins=i,
            dels=d,
            subs=s,
            utts=len(counts),
            utts_with_errors=int(np.count_nonzero(errors)),
        )

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.subs

    @property
    def corr(self) -> int:
        """Reference units that were recognised correctly."""
        return self.ref_len - self.subs - self.dels

    @property
    def rate(self) -> float:
        """Error rate in percent; with an empty reference, 0 when there are no insertions."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.ref_len

    @property
    def sentence_error_rate(self) -> float:
        return 100.0 * self.utts_with_errors / self.utts if self.utts else 0.0

    def __iadd__(self, other: ErrorCounts) -> ErrorCounts:
        self.ref_len += other.ref_len
        self.ins += other.ins
        self.dels += other.dels
        self.subs += other.subs
        self.utts += other.utts
        self.utts_with_errors += other.utts_with_errors
        return self

    def kaldi_line(self, name: str = "WER") -> str:
        """``%WER 4.21 [ 221 / 5250, 31 ins, 70 del, 120 sub ]``"""
        return (
            f"%{name} {self.rate:.2f} [ {self.errors} / {self.ref_len}, "
            f"{self.ins} ins, {self.dels} del, {self.subs} sub ]"
        )

    def ser_line(self) -> str:
        """``%SER 10.00 [ 13 / 130 ]``"""
        return f"%SER {self.sentence_error_rate:.2f} [ {self.utts_with_errors} / {self.utts} ]"

    def to_dict(self) -> dict:
        return {
            "ref_len": self.ref_len,
            "ins": self.ins,
            "dels": self.dels,
            "subs": self.subs,
            "utts": self.utts,
            "utts_with_errors": self.utts_with_errors,
            "rate": self.rate,
            "errors": self.errors,
        }
