"""``asr data ACTION``: Kaldi data-directory utilities (validate, fix, subset, features, ...)."""

from __future__ import annotations

import argparse

from asr.cli import data_dirs, data_features, data_shards


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="work on Kaldi data directories",
        description="Kaldi data-directory utilities; each action has its own --help.",
    )
    actions = p.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True
    for module in (data_dirs, data_features, data_shards):
        module.add_parsers(actions)
