"""What every command shares: one-line errors, exit codes, logging flags."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from asr.errors import AsrError

EXIT_OK = 0
EXIT_ERROR = 1  # the input or environment is at fault; the message says which and what to do
EXIT_USAGE = 2  # bad command line (argparse)
EXIT_INTERRUPTED = 130


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging; tracebacks on errors")


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str) -> int:
    """Run ``func(args)``; turn expected failures into one line on stderr and an exit code."""
    try:
        return func(args)
    except AsrError as exc:
        if getattr(args, "verbose", False):
            logging.getLogger(prog).exception("failed")
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`asr score ... | head`): stop quietly, as Unix filters do.
        # Point stdout at /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
