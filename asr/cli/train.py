"""``asr train``: train a BiLSTM-CTC model on Kaldi data directories."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asr.cli.common import add_verbosity
from asr.config import load_config
from asr.data import read_data_dir
from asr.data.dataset import load_examples
from asr.errors import AsrError
from asr.features import LogMel
from asr.text import Tokenizer
from asr.utils import setup_logging

log = logging.getLogger("asr.train")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an acoustic model",
        description="Train a deep (bi)LSTM-CTC model. Resumes from the newest checkpoint in "
        "EXP_DIR unless --no-resume. The best model on dev loss is exported to EXP_DIR/final.",
    )
    p.add_argument("--train", required=True, help="training data dir (wav.scp, text)")
    p.add_argument("--dev", help="dev data dir for early stopping and model selection")
    p.add_argument("--exp-dir", required=True, help="experiment directory for logs, checkpoints, model")
    p.add_argument("--config", action="append", default=[], help="YAML config; repeat to merge in order")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set model.hidden_size=128")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if checkpoints exist")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_verbosity(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    exp_dir = Path(args.exp_dir)
    setup_logging(args.verbose, exp_dir / "train.log")
    config = load_config(args.config, args.overrides)
    log.info("command: %s", " ".join(sys.argv))
    import torch

    if config.train.num_threads > 0:
        torch.set_num_threads(config.train.num_threads)
    frontend = LogMel(config.features)
    train_dir = read_data_dir(args.train)
    tokens_file = exp_dir / "tokens.txt"
    if tokens_file.exists() and not args.no_resume:
        tokenizer = Tokenizer.load(tokens_file, config.tokenizer.type)  # keep ids stable across a resume
    else:
        tokenizer = Tokenizer.build((u.text for u in train_dir.utterances), config.tokenizer.type)
    progress = sys.stderr.isatty() and not args.no_progress
    subsampling = config.model.frame_stack
    train_set, report = load_examples(
        train_dir, frontend, tokenizer, subsampling, config.train.max_duration_s, progress=progress
    )
    report.log(str(train_dir.path))
    log.info("%s: %d utterances, %.2f hours", train_dir.path, len(train_set), sum(e.duration for e in train_set) / 3600)
    dev_set = []
    if args.dev:
        dev_dir = read_data_dir(args.dev)
        dev_set, dev_report = load_examples(dev_dir, frontend, tokenizer, subsampling, progress=progress)
        dev_report.log(str(dev_dir.path))
    if not train_set:
        raise AsrError(f"{train_dir.path}: no usable training utterances (see the warnings above)")
    from asr.train import Trainer

    trainer = Trainer(config, exp_dir, tokenizer, train_set, dev_set, progress=progress)
    trainer.fit(resume=not args.no_resume)
    return 0
