"""What a scoring run found, and its renderings: Kaldi lines, tables, JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from asr.scoring.counts import ErrorCounts
from asr.scoring.details import OpCount, WordDetails
from asr.scoring.normalize import describe


@dataclass
class ScoreReport:
    """Totals (``wer``, ``cer``), per-speaker word counts, and the utterances that were
    missing a hypothesis; ``details`` holds the word alignments when the report came from
    :func:`asr.scoring.score`."""

    wer: ErrorCounts
    cer: ErrorCounts
    per_speaker: dict[str, ErrorCounts] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # reference utterances with no hypothesis
    normalize: str = "none"
    extra_ignored: list[str] = field(default_factory=list)  # hypotheses with no reference
    details: WordDetails | None = None

    def lines(self) -> list[str]:
        """``%WER``, ``%SER`` and ``%CER`` lines, then a comment naming missing hypotheses."""
        out = [self.wer.kaldi_line("WER"), self.wer.ser_line(), self.cer.kaldi_line("CER")]
        if self.missing:
            shown = ", ".join(self.missing[:5])
            out.append(f"# {len(self.missing)} utterance(s) had no hypothesis (scored as deletions): {shown}")
        return out

    def notes(self) -> list[str]:
        """Comment lines on how the figures were obtained: normalisation, ignored hypotheses."""
        out = [f"# normalisation: {describe(self.normalize)}"]
        if self.extra_ignored:
            shown = ", ".join(self.extra_ignored[:5])
            out.append(
                f"# {len(self.extra_ignored)} hypothesis utterance(s) without a reference were "
                f"ignored (--ignore-extra): {shown}"
            )
        return out

    def speaker_table(self) -> str:
        """A Markdown table: one row per speaker, sorted by speaker id."""
        rows = ["| speaker | utts | words | WER % | ins | del | sub |", "|---|---:|---:|---:|---:|---:|---:|"]
        for spk, c in sorted(self.per_speaker.items()):
            rows.append(f"| {spk} | {c.utts} | {c.ref_len} | {c.rate:.2f} | {c.ins} | {c.dels} | {c.subs} |")
        return "\n".join(rows)

    def top_errors(self, n: int = 10) -> dict[str, list[OpCount]]:
        """The ``n`` most frequent substitutions, deletions and insertions."""
        if self.details is None:
            return {"substitution": [], "deletion": [], "insertion": []}
        ops = self.details.op_counts(top=n)  # sorted: most frequent first within each kind
        return {kind: [o for o in ops if o.kind == kind][:n] for kind in ("substitution", "deletion", "insertion")}

    def top_errors_lines(self, n: int = 10) -> list[str]:
        """Human-readable sections of :meth:`top_errors`: ``count  ref -> hyp``."""
        out = []
        for kind, entries in self.top_errors(n).items():
            out.append(f"# most frequent {kind}s (count  ref -> hyp)" if kind == "substitution"
                       else f"# most frequent {kind}s (count  word)")
            if not entries:
                out.append("   (none)")
            for o in entries:
                shown = {"substitution": f"{o.ref} -> {o.hyp}", "deletion": o.ref, "insertion": o.hyp}[kind]
                out.append(f"{o.count:6d}  {shown}")
        return out

    def to_dict(self) -> dict:
        """Totals, per-speaker counts and missing utterances (what ``asr decode`` stores)."""
        return {
            "wer": self.wer.to_dict(),
            "ser": self.wer.sentence_error_rate,
            "cer": self.cer.to_dict(),
            "per_speaker": {s: c.to_dict() for s, c in self.per_speaker.items()},
            "missing": self.missing,
        }

    def to_full_dict(self) -> dict:
        """:meth:`to_dict` plus normalisation, ignored hypotheses, every distinct edit with its
        count, and every utterance's alignment."""
        out = self.to_dict() | {
            "normalize": self.normalize,
            "normalize_description": describe(self.normalize),
            "extra_ignored": self.extra_ignored,
        }
        if self.details is not None:
            d = self.details
            out["ops"] = [
                {"kind": o.kind, "ref": o.ref, "hyp": o.hyp, "count": o.count} for o in d.op_counts()
            ]
            out["utterances"] = {
                utt: {"speaker": spk} | d.utterance(i)
                for i, (utt, spk) in enumerate(zip(d.utt_ids, d.speakers, strict=True))
            }
        return out
