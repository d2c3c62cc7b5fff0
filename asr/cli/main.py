"""``asr``: the toolkit's command with subcommands."""

from __future__ import annotations

import argparse
import sys

from asr import __version__
from asr.cli import average, benchmark, data, decode, lm, models, score, train
from asr.cli import export as export_cli
from asr.cli.common import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr",
        description="Deep bidirectional LSTM-CTC speech recognition. "
        "Exit codes: 0 success, 1 error in the input or environment, 2 bad command line, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"asr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in (train, decode, score, models, data, lm, average, benchmark, export_cli):
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args.func, args, f"asr {args.command}")


if __name__ == "__main__":
    sys.exit(main())
