"""``asr combine``: several systems' hypotheses of the same utterances combined by ROVER word
voting (:mod:`asr.rover`), written as one Kaldi ``text`` file to score like any other."""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.cli.common import add_verbosity
from asr.errors import AsrError
from asr.rover import combine
from asr.scoring import FORMATS, read_transcripts
from asr.utils import atomic_write_text


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "combine",
        help="combine several systems' hypotheses by ROVER word voting",
        description="Align the hypotheses of each utterance into one word network and keep, "
        "at every position, the word (or nothing) most systems chose; a tie goes to the system "
        "listed first, so list them best first (as measured on dev). Three systems or more: "
        "with two, the first always wins. A system without a hypothesis for an utterance "
        "counts as an empty one.",
    )
    p.add_argument("hyps", nargs="+", metavar="HYP", help="hypothesis files, best system first")
    p.add_argument("--out", "-o", required=True, help="the combined hypotheses (Kaldi text)")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="format of the input files: Kaldi text or sclite trn (default text)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    add_verbosity(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if len(args.hyps) < 2:
        raise AsrError("asr combine: give at least two hypothesis files (three or more to vote)")
    systems = [{utt: words.split() for utt, words in read_transcripts(path, args.format).items()}
               for path in args.hyps]
    combined = combine(systems)
    text = "".join(f"{utt} {' '.join(words)}".rstrip() + "\n" for utt, words in combined.items())
    atomic_write_text(Path(args.out), text)
    if not args.quiet:
        print(f"combined {len(args.hyps)} systems over {len(combined)} utterances into {args.out}")
    return 0
