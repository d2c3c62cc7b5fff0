"""``asr lm``: build n-gram language models and lexicons for decoding."""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.cli.common import add_verbosity
from asr.lm import build_lm, read_sentences
from asr.utils import setup_logging


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``asr lm build`` and ``asr lm lexicon``."""
    p = subparsers.add_parser("lm", help="build n-gram language models and lexicons",
                              description="Language models and lexicons for `asr decode`.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    build = actions.add_parser(
        "build", help="estimate an ARPA n-gram LM (modified Kneser-Ney) from text",
        description="Estimates an interpolated modified Kneser-Ney model with KenLM's lmplz "
        "(tools/install_kenlm.sh builds it), or with the built-in estimator when lmplz is "
        "absent; --binary also writes a KenLM binary next to the ARPA file.")
    build.add_argument("texts", nargs="+", metavar="TEXT",
                       help="text files, one sentence a line (or Kaldi `text` files with --kaldi)")
    build.add_argument("-o", "--out", required=True, help="the ARPA file to write, e.g. lm.arpa")
    build.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    build.add_argument("--kaldi", action="store_true",
                       help="TEXT files are Kaldi `text` files: the first field is the utterance id")
    build.add_argument("--unit", choices=("word", "char"), default="word",
                       help="word LM, or character LM over the units of a character model "
                       "(words separated by <space>)")
    build.add_argument("--estimator", choices=("auto", "kenlm", "builtin"), default="auto",
                       help="auto: lmplz when installed, else the built-in estimator")
    build.add_argument("--binary", action="store_true",
                       help="also write the KenLM binary OUT without .arpa + .bin (needs build_binary)")
    build.add_argument("--memory", default="10%", help="lmplz's sort memory -S (default 10%%)")
    add_verbosity(build)
    build.set_defaults(func=run_build)

    lexicon = actions.add_parser(
        "lexicon", help="spell every word of the text in a character model's tokens",
        description="Writes `word<TAB>c h a r s <space>` lines for the lexicon decoder.")
    lexicon.add_argument("texts", nargs="+", metavar="TEXT")
    lexicon.add_argument("-o", "--out", required=True, help="the lexicon file to write")
    lexicon.add_argument("--kaldi", action="store_true", help="TEXT files are Kaldi `text` files")
    add_verbosity(lexicon)
    lexicon.set_defaults(func=run_lexicon)


def run_build(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    out = Path(args.out)
    binary = out.with_suffix(".bin") if args.binary else None
    if binary == out:
        binary = out.with_name(out.name + ".bin")
    build_lm(args.texts, args.order, out, kaldi=args.kaldi, unit=args.unit,
             estimator=args.estimator, binary=binary, memory=args.memory)
    print(f"wrote {out}" + (f" and {binary}" if binary else ""))
    return 0


def run_lexicon(args: argparse.Namespace) -> int:
    from asr.decode.lexicon import write_lexicon  # torch: not for `asr lm build` or --help

    setup_logging(args.verbose)
    words = sorted({w for s in read_sentences(args.texts, args.kaldi) for w in s})
    write_lexicon(args.out, words)
    print(f"wrote {args.out} ({len(words)} words)")
    return 0
