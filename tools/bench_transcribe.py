#!/usr/bin/env python3
"""transcribe benchmark; the same as ``asr benchmark transcribe`` (see --help)."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.benchmarks import transcribe  # noqa: E402
from asr.cli.common import run_command  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench_transcribe.py", description=transcribe.__doc__)
    transcribe.add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    sys.exit(run_command(transcribe.run, parser.parse_args(), "bench_transcribe.py"))
