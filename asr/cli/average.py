"""``asr average-checkpoints``: average the weights of several checkpoints into a model
directory (e.g. the last N epochs of a run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.cli.common import add_verbosity


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``asr average-checkpoints``."""
    p = subparsers.add_parser(
        "average-checkpoints",
        help="average checkpoint weights into a model directory",
        description="Average the model weights of CHECKPOINTs (training checkpoints, best.pt "
        "files or model directories) or of the last N epoch checkpoints of EXP_DIR, and write "
        "a model directory with EXP_DIR's config and tokens.",
    )
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                   help="files or model dirs to average (default: EXP_DIR's epoch-*.pt)")
    p.add_argument("--exp-dir", required=True, help="experiment directory (config.yaml, tokens.txt)")
    p.add_argument("--last", type=int, metavar="N",
                   help="without CHECKPOINTs: the last N epoch checkpoints (default: all kept)")
    p.add_argument("--out", help="model directory to write (default: EXP_DIR/averaged)")
    add_verbosity(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # torch: imported when the command runs, not when its parser is built (--help).
    from asr.config import config_from_dict, load_yaml
    from asr.model import build_model
    from asr.modeldir import save_model_dir
    from asr.text import Tokenizer
    from asr.train.checkpoint import CheckpointError, average_weights, epoch_checkpoints

    exp = Path(args.exp_dir)
    for name in ("config.yaml", "tokens.txt"):
        if not (exp / name).is_file():
            raise CheckpointError(f"{exp}: no {name}; give the experiment directory `asr train` wrote")
    paths = [Path(p) for p in args.checkpoints]
    if not paths:
        paths = epoch_checkpoints(exp / "checkpoints")
        if args.last is not None:
            if args.last < 1:
                raise CheckpointError(f"--last {args.last}: average at least one checkpoint")
            paths = paths[-args.last :]
        if not paths:
            raise CheckpointError(f"{exp / 'checkpoints'}: no epoch-*.pt checkpoints to average")
    config = config_from_dict(load_yaml(exp / "config.yaml"), str(exp / "config.yaml"))
    tokenizer = Tokenizer.load(exp / "tokens.txt", config.tokenizer.type)
    model = build_model(config.model, config.features, len(tokenizer))
    weights = average_weights(paths)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{paths[0]}: weights do not fit the model of {exp / 'config.yaml'} "
            f"({str(exc).splitlines()[0]})"
        ) from None
    out = save_model_dir(Path(args.out) if args.out else exp / "averaged", model, config, tokenizer)
    print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) into {out}")
    return 0
