"""``asr data validate|fix|subset|combine|split|copy|perturb-speed|get-durations``."""

from __future__ import annotations

import argparse


def add_parsers(actions: argparse._SubParsersAction) -> None:
    """Register this module's actions under ``asr data``."""
