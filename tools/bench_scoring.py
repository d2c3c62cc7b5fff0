#!/usr/bin/env python3
"""Scoring speed and agreement with sclite; the same as ``asr benchmark scoring`` (see --help)."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.benchmarks import scoring  # noqa: E402
from asr.cli.common import run_command  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench_scoring.py", description=scoring.__doc__)
    scoring.add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    sys.exit(run_command(scoring.run, parser.parse_args(), "bench_scoring.py"))
