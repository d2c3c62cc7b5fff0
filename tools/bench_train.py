#!/usr/bin/env python3
"""Training speed benchmark; the same as ``asr benchmark train`` (see --help)."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.benchmarks import train  # noqa: E402
from asr.cli.common import run_command  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench_train.py", description=train.__doc__)
    train.add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    sys.exit(run_command(train.run, parser.parse_args(), "bench_train.py"))
