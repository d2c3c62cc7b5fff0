"""Word and character error rates, reported as Kaldi's ``compute-wer`` does.

Alignments come from jiwer (Levenshtein with unit costs). No text normalisation happens here:
what is compared is exactly the whitespace-separated words given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import jiwer

from asr.errors import AsrError


@dataclass
class ErrorCounts:
    """Edit counts over a set of utterances (``ref_len``: reference words or characters)."""

    ref_len: int = 0
    ins: int = 0
    dels: int = 0
    subs: int = 0
    utts: int = 0
    utts_with_errors: int = 0

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.subs

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


def _count(ref_units: list[list[str]], hyp_units: list[list[str]]) -> ErrorCounts:
    """Sum edit counts over utterance pairs of unit lists (words or characters)."""
    counts = ErrorCounts()
    nonempty = [(r, h) for r, h in zip(ref_units, hyp_units, strict=True) if r]
    for ref, hyp in zip(ref_units, hyp_units, strict=True):
        if not ref:  # jiwer rejects empty references: every hypothesis unit is an insertion
            counts.ins += len(hyp)
            counts.utts += 1
            counts.utts_with_errors += bool(hyp)
    if nonempty:
        # jiwer aligns word lists when given strings; pass units joined by a character that
        # cannot occur inside a unit.
        out = jiwer.process_words(
            [" ".join(r) for r, _ in nonempty], [" ".join(h) for _, h in nonempty]
        )
        counts.ref_len += sum(len(r) for r, _ in nonempty)
        counts.ins += out.insertions
        counts.dels += out.deletions
        counts.subs += out.substitutions
        counts.utts += len(nonempty)
        counts.utts_with_errors += sum(1 for r, h in nonempty if r != h)
    return counts


def word_errors(refs: list[str], hyps: list[str]) -> ErrorCounts:
    return _count([r.split() for r in refs], [h.split() for h in hyps])


def char_errors(refs: list[str], hyps: list[str]) -> ErrorCounts:
    """Character errors; words are joined by a single space, which counts as a character."""

    def units(text: str) -> list[str]:
        # jiwer splits on whitespace, so the space unit gets a visible, multi-character name
        # that no single character can equal.
        return ["<space>" if c == " " else c for c in " ".join(text.split())]

    return _count([units(r) for r in refs], [units(h) for h in hyps])


@dataclass
class ScoreReport:
    wer: ErrorCounts
    cer: ErrorCounts
    per_speaker: dict[str, ErrorCounts] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # reference utterances with no hypothesis

    def lines(self) -> list[str]:
        out = [self.wer.kaldi_line("WER"), self.wer.ser_line(), self.cer.kaldi_line("CER")]
        if self.missing:
            shown = ", ".join(self.missing[:5])
            out.append(f"# {len(self.missing)} utterance(s) had no hypothesis (scored as deletions): {shown}")
        return out

    def speaker_table(self) -> str:
        rows = ["| speaker | utts | words | WER % | ins | del | sub |", "|---|---:|---:|---:|---:|---:|---:|"]
        for spk, c in sorted(self.per_speaker.items()):
            rows.append(f"| {spk} | {c.utts} | {c.ref_len} | {c.rate:.2f} | {c.ins} | {c.dels} | {c.subs} |")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        def one(c: ErrorCounts) -> dict:
            return {**asdict(c), "rate": c.rate, "errors": c.errors}

        return {
            "wer": one(self.wer),
            "ser": self.wer.sentence_error_rate,
            "cer": one(self.cer),
            "per_speaker": {s: one(c) for s, c in self.per_speaker.items()},
            "missing": self.missing,
        }


def score(
    refs: dict[str, str],
    hyps: dict[str, str],
    utt2spk: dict[str, str] | None = None,
    ignore_extra: bool = False,
) -> ScoreReport:
    """Score hypotheses against references keyed by utterance id.

    A reference without a hypothesis is scored as all deletions and listed in ``missing``; a
    hypothesis without a reference is an error unless ``ignore_extra``.
    """
    extra = [u for u in hyps if u not in refs]
    if extra and not ignore_extra:
        raise AsrError(
            f"{len(extra)} hypothesis utterance(s) have no reference, first '{extra[0]}' "
            "(pass --ignore-extra to drop them)"
        )
    ids = list(refs)
    missing = [u for u in ids if u not in hyps]
    ref_list = [refs[u] for u in ids]
    hyp_list = [hyps.get(u, "") for u in ids]
    report = ScoreReport(word_errors(ref_list, hyp_list), char_errors(ref_list, hyp_list), missing=missing)
    if utt2spk:
        by_speaker: dict[str, list[int]] = {}
        for i, u in enumerate(ids):
            by_speaker.setdefault(utt2spk.get(u, u), []).append(i)
        for spk, idx in by_speaker.items():
            report.per_speaker[spk] = word_errors([ref_list[i] for i in idx], [hyp_list[i] for i in idx])
    return report
