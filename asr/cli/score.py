"""``asr score``: WER/SER/CER of hypotheses against references, as Kaldi prints them and as
sclite counts them; per-speaker tables, frequent errors, alignments, bootstrap intervals and
a paired comparison of two systems."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asr.cli.common import add_verbosity
from asr.data.tables import read_kaldi_map
from asr.scoring import (
    FORMATS,
    NORMALIZATIONS,
    BootstrapInterval,
    ScoreReport,
    ScoringError,
    bootstrap_interval,
    paired_bootstrap,
    read_transcripts,
    score,
)
from asr.scoring.readers import speaker_from_trn_id
from asr.scoring.scorer import gc_paused
from asr.utils import atomic_write_text

DEFAULT_PAIRED_RESAMPLES = 1000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score",
        help="score hypotheses against references (WER, SER, CER; sclite-exact counts)",
        description="Score Kaldi `text` files (<utt-id> words...) or sclite `trn` files "
        "(words... (utt-id)). Words are aligned with sclite's costs and tie-breaking, so the "
        "counts equal sclite's. No normalisation is applied unless --normalize says so, and "
        "the output always names the one used. References with no hypothesis count as "
        "deletions and are listed. Prints the %WER/%SER/%CER lines, a per-speaker table, "
        "the most frequent errors and, with --per-utt, every alignment. Give --hyp2 to "
        "compare two systems (paired bootstrap, Bisani & Ney 2004).",
    )
    p.add_argument("--ref", required=True, help="reference transcripts")
    p.add_argument("--hyp", required=True, help="hypotheses (system A)")
    p.add_argument("--hyp2", help="hypotheses of a second system (B) to compare with A")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="file format of --ref/--hyp/--hyp2: Kaldi text or sclite trn (default text)")
    p.add_argument("--normalize", choices=NORMALIZATIONS, default="none",
                   help="none: compare words exactly as written (default); basic: case folding "
                   "and punctuation stripping (see docs/scoring.md)")
    p.add_argument("--utt2spk", help="utt2spk file for the per-speaker table (trn files: "
                   "default speaker is the id up to its first '-' or '_', as sclite does)")
    p.add_argument("--ignore-extra", action="store_true", help="drop hypotheses that have no reference")
    p.add_argument("--top", type=int, default=10,
                   help="how many of the most frequent substitutions/deletions/insertions to list "
                   "(default 10; 0: none)")
    p.add_argument("--per-utt", action="store_true",
                   help="also print every utterance's alignment (Kaldi per_utt lines)")
    p.add_argument("--bootstrap", type=int, default=None, metavar="N",
                   help="bootstrap confidence interval of the WER from N resamples "
                   f"(default: off; {DEFAULT_PAIRED_RESAMPLES} with --hyp2)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws (default 0)")
    p.add_argument("--json", help="write every figure, alignment and setting as JSON here")
    p.add_argument("--details", metavar="DIR",
                   help="write wer, per_utt, per_spk, ops and score.json into DIR (Kaldi's "
                   "wer_details layout; with --hyp2, DIR/A and DIR/B)")
    add_verbosity(p)
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> int:
    """Validate the numeric options; return the number of bootstrap resamples (0: none)."""
    if args.top < 0:
        raise ScoringError(f"--top {args.top}: give a count of 0 or more")
    if not 0.0 < args.confidence < 1.0:
        raise ScoringError(f"--confidence {args.confidence}: give a level between 0 and 1, e.g. 0.95")
    resamples = args.bootstrap
    if resamples is None:
        resamples = DEFAULT_PAIRED_RESAMPLES if args.hyp2 else 0
    if resamples < 0 or (args.hyp2 and resamples == 0):
        raise ScoringError(
            f"--bootstrap {resamples}: give a positive number of resamples"
            + (" (the comparison of two systems needs them)" if args.hyp2 else "")
        )
    return resamples


def _speakers(args: argparse.Namespace, refs: dict[str, str]) -> dict[str, str] | None:
    if args.utt2spk:
        return read_kaldi_map(args.utt2spk)
    if args.format == "trn":
        return {u: speaker_from_trn_id(u) for u in refs}
    return None


def _summary(report: ScoreReport, args: argparse.Namespace, interval: BootstrapInterval | None) -> list[str]:
    out = report.lines() + report.notes()
    if interval is not None:
        out.append(interval.line("WER"))
    if report.per_speaker:
        out += ["", report.speaker_table()]
    if args.top:
        out += ["", *report.top_errors_lines(args.top)]
    if args.per_utt and report.details is not None:
        out += ["", *report.details.per_utt_lines()]
    return out


def _full_dict(report: ScoreReport, interval: BootstrapInterval | None, hyp_path: str) -> dict:
    out = report.to_full_dict() | {"hyp": hyp_path}
    if interval is not None:
        out["bootstrap"] = interval.to_dict()
    return out


def _write_details(
    directory: Path, report: ScoreReport, data: dict, interval: BootstrapInterval | None
) -> None:
    lines = report.lines() + report.notes() + ([interval.line("WER")] if interval else [])
    atomic_write_text(directory / "wer", "\n".join(lines) + "\n")
    if report.details is not None:
        atomic_write_text(directory / "per_utt", "".join(f"{x}\n" for x in report.details.per_utt_lines()))
        atomic_write_text(directory / "ops", "".join(f"{x}\n" for x in report.details.ops_lines()))
    if report.per_speaker:
        atomic_write_text(directory / "per_spk", report.speaker_table() + "\n")
    atomic_write_text(directory / "score.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def run(args: argparse.Namespace) -> int:
    resamples = _check_args(args)
    with gc_paused():  # reading 100,000-line files builds many small objects; see gc_paused
        refs = read_transcripts(args.ref, args.format)
        hyps = read_transcripts(args.hyp, args.format)
        hyps2 = read_transcripts(args.hyp2, args.format) if args.hyp2 else None
    utt2spk = _speakers(args, refs)
    settings = {"ref": args.ref, "format": args.format, "normalize": args.normalize}

    def one(hyp_map: dict[str, str]) -> tuple[ScoreReport, BootstrapInterval | None]:
        report = score(refs, hyp_map, utt2spk, ignore_extra=args.ignore_extra, normalize=args.normalize)
        interval = None
        if resamples and report.details is not None and len(report.details.utt_ids):
            d = report.details
            interval = bootstrap_interval(d.utt_errors, d.utt_ref_len, resamples, args.confidence, args.seed)
        return report, interval

    report_a, interval_a = one(hyps)
    # The full dictionary holds every utterance's alignment: build it only when it is written.
    wanted = bool(args.json or args.details)
    if hyps2 is None:
        print("\n".join(_summary(report_a, args, interval_a)))
        data = (settings | _full_dict(report_a, interval_a, args.hyp)) if wanted else {}
        if args.details:
            _write_details(Path(args.details), report_a, data, interval_a)
    else:
        report_b, interval_b = one(hyps2)
        if not refs:
            raise ScoringError(f"{args.ref}: no reference utterances to compare the systems on")
        da, db = report_a.details, report_b.details
        comparison = paired_bootstrap(
            da.utt_errors, db.utt_errors, da.utt_ref_len, resamples, args.confidence, args.seed
        )
        out = [f"== A: {args.hyp}", *_summary(report_a, args, interval_a), "",
               f"== B: {args.hyp2}", *_summary(report_b, args, interval_b), "",
               "== A vs B", *comparison.lines("A", "B", "WER")]
        print("\n".join(out))
        data = {}
        if wanted:
            data = settings | {
                "A": _full_dict(report_a, interval_a, args.hyp),
                "B": _full_dict(report_b, interval_b, args.hyp2),
                "comparison": comparison.to_dict(),
            }
        if args.details:
            _write_details(Path(args.details) / "A", report_a, data["A"], interval_a)
            _write_details(Path(args.details) / "B", report_b, data["B"], interval_b)
    if args.json:
        atomic_write_text(args.json, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return 0
