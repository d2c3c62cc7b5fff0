#!/usr/bin/env python3
"""Decoder benchmark; the same as ``asr benchmark decode`` (see --help)."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.benchmarks import decode  # noqa: E402
from asr.cli.common import run_command  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench_decode.py", description=decode.__doc__)
    decode.add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    sys.exit(run_command(decode.run, parser.parse_args(), "bench_decode.py"))
