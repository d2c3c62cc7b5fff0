"""``asr``: the toolkit's command with subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys

from asr import __version__
from asr.cli.common import run_command

# Subcommand -> module with ``add_parser(subparsers)``. Only the module of the command being run
# is imported, so that e.g. ``asr score`` starts without torch; ``asr --help`` imports them all.
COMMANDS = {
    "train": "asr.cli.train",
    "decode": "asr.cli.decode",
    "score": "asr.cli.score",
    "combine": "asr.cli.combine",
    "rescore": "asr.cli.rescore",
    "models": "asr.cli.models",
    "data": "asr.cli.data",
    "lm": "asr.cli.lm",
    "average-checkpoints": "asr.cli.average",
    "benchmark": "asr.cli.benchmark",
    "export": "asr.cli.export",
    "follow": "asr.cli.follow",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``command`` one that knows only that subcommand."""
    parser = argparse.ArgumentParser(
        prog="asr",
        description="Deep bidirectional LSTM-CTC speech recognition. "
        "Exit codes: 0 success, 1 error in the input or environment, 2 bad command line, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"asr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, module in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    return run_command(args.func, args, f"asr {args.command}")


if __name__ == "__main__":
    sys.exit(main())
