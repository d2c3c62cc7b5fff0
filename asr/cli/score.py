"""``asr score``: WER/CER of hypotheses against references, printed as Kaldi does."""

from __future__ import annotations

import argparse
import json

from asr.cli.common import add_verbosity
from asr.data.kaldi import read_kaldi_map
from asr.score import score
from asr.utils import atomic_write_text


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score",
        help="score hypotheses against references (WER, SER, CER)",
        description="Score Kaldi `text` files (<utt-id> words...). No normalisation is applied: "
        "words are compared exactly as written. References with no hypothesis count as deletions.",
    )
    p.add_argument("--ref", required=True, help="reference text file")
    p.add_argument("--hyp", required=True, help="hypothesis text file")
    p.add_argument("--utt2spk", help="utt2spk file for a per-speaker table")
    p.add_argument("--json", help="also write every figure as JSON here")
    p.add_argument("--ignore-extra", action="store_true", help="drop hypotheses that have no reference")
    add_verbosity(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    refs = read_kaldi_map(args.ref, allow_empty_value=True)
    hyps = read_kaldi_map(args.hyp, allow_empty_value=True)
    utt2spk = read_kaldi_map(args.utt2spk) if args.utt2spk else None
    report = score(refs, hyps, utt2spk, ignore_extra=args.ignore_extra)
    print("\n".join(report.lines()))
    if utt2spk:
        print()
        print(report.speaker_table())
    if args.json:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2) + "\n")
    return 0
