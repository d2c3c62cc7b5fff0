"""``asr follow``: live progress of a training run that writes its output elsewhere (a
launcher's log file, a Slurm job): the new lines of EXP/train.log and, on a terminal, a bar of
the current epoch (:mod:`asr.progress`)."""

from __future__ import annotations

import argparse

from asr.progress import follow


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``asr follow``."""
    p = subparsers.add_parser(
        "follow",
        help="show the live progress of a training run",
        description="Print the lines that `asr train --exp-dir EXP_DIR` appends to "
        "EXP_DIR/train.log from now on (one per epoch with train loss, dev WER, seconds and "
        "ETA) and, on a terminal, a progress bar of the current epoch. Returns when the run has "
        "exported its model or stopped, or on SIGTERM/SIGINT (after printing what is left). "
        "Recipes run it beside their training job (tools/train.sh).",
    )
    p.add_argument("exp_dir", metavar="EXP_DIR", help="experiment directory of the run")
    p.add_argument("--bar", choices=["auto", "yes", "no"], default="auto",
                   help="draw the epoch's progress bar: auto = when stdout is a terminal")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop following after this long")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bar = {"auto": None, "yes": True, "no": False}[args.bar]
    follow(args.exp_dir, bar=bar, timeout=args.timeout)
    return 0
