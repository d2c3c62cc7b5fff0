"""``asr data compute-features``: dump features of a data directory to feats.scp/ark."""

from __future__ import annotations

import argparse


def add_parsers(actions: argparse._SubParsersAction) -> None:
    """Register this module's actions under ``asr data``."""
