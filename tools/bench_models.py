#!/usr/bin/env python3
"""Model x data WER/speed table; the same as ``asr benchmark models`` (see --help)."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.benchmarks import models  # noqa: E402
from asr.cli.common import run_command  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench_models.py", description=models.__doc__)
    models.add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    sys.exit(run_command(models.run, parser.parse_args(), "bench_models.py"))
