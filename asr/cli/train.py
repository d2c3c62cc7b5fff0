"""``asr train``: train a BiLSTM-CTC model on Kaldi data directories.

One process, or one per GPU under ``torchrun`` (data parallel; rank 0 writes everything)::

    torchrun --nproc_per_node=4 -m asr.cli.main train --train data/train ...
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from pathlib import Path

from asr.cli.common import add_verbosity
from asr.config import ExperimentConfig, load_config
from asr.errors import AsrError
from asr.utils import atomic_write_text, setup_logging

log = logging.getLogger("asr.train")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an acoustic model",
        description="Train a deep (bi)LSTM-CTC model. Resumes from the newest checkpoint in "
        "EXP_DIR unless --no-resume. The best model on dev loss is exported to EXP_DIR/final. "
        "SIGINT/SIGTERM save a checkpoint and stop (exit code 130); rerun to resume. For "
        "several GPUs: torchrun --nproc_per_node=N -m asr.cli.main train ...",
    )
    p.add_argument("--train", help="training data dir (wav.scp, text)")
    p.add_argument("--dev", help="dev data dir for early stopping and model selection")
    p.add_argument("--exp-dir", help="experiment directory for logs, checkpoints, model")
    p.add_argument("--config", action="append", default=[],
                   help="YAML config file or preset name (e.g. model/ctc_5l_250h; see "
                   "--list-presets); repeat to merge in order")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set model.hidden_size=128")
    p.add_argument("--init-from", metavar="PATH",
                   help="start from these weights (a model dir, an experiment dir's best.pt, or a "
                   "checkpoint), e.g. phase 2 with weight noise from phase 1's best; same as "
                   "--set train.init_from=PATH")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if checkpoints exist")
    p.add_argument("--max-bad-utts", type=int, metavar="N",
                   help="utterances with missing, corrupt or unreadable audio skipped (logged and "
                   "listed in EXP_DIR/bad_utts) before the run stops; -1: no limit (default 0); "
                   "same as --set train.max_bad_utts=N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-params", action="store_true",
                   help="print the model's parameter count (and the count as Graves et al. 2013 "
                   "count weights) for the given configs, then exit; no data needed")
    p.add_argument("--feat-dim", type=int,
                   help="with --print-params: input dimension (default: the features config's)")
    p.add_argument("--num-tokens", type=int, default=62,
                   help="with --print-params: output units including blank (default 62, as TIMIT)")
    p.add_argument("--graves-table", action="store_true",
                   help="print the parameter counts of the model/ctc_* presets with 123 "
                   "inputs and 62 outputs next to the paper's, then exit")
    p.add_argument("--list-presets", action="store_true",
                   help="list the presets --config accepts by name, grouped, with parameter "
                   "counts of the model presets (123 inputs and 62 outputs unless --feat-dim / "
                   "--num-tokens), then exit")
    add_verbosity(p)
    p.set_defaults(func=run, parser=p)


def print_params(config: ExperimentConfig, feat_dim: int | None, num_tokens: int) -> None:
    from asr.features import feature_dim
    from asr.model import AcousticModel, count_parameters, graves_weight_count

    dim = feat_dim if feat_dim is not None else feature_dim(config.features)
    model = AcousticModel(config.model, dim, num_tokens, cmvn=config.features.cmvn)
    graves = graves_weight_count(config.model, dim, num_tokens)
    print(f"inputs {dim}, outputs {num_tokens}")
    print(f"parameters: {count_parameters(model):,}")
    if graves is not None:
        print(f"weights as Graves et al. (2013) count them (peephole LSTM, one bias per gate): {graves:,}")


def graves_table() -> str:
    from asr.model.params import format_preset_table, preset_counts
    from asr.presets import list_presets, preset_dir, preset_path

    paths = [preset_path("model", n) for n in list_presets()["model"] if n.startswith("ctc_")]
    if not paths:
        raise AsrError(f"{preset_dir() / 'model'}: no ctc_*.yaml presets found (reinstall asr)")
    return format_preset_table(preset_counts(paths))


def presets_listing(feat_dim: int | None, num_tokens: int) -> str:
    """Every preset by group, one line each: name, (model presets) parameters, description."""
    from asr.model import AcousticModel, count_parameters
    from asr.model.params import GRAVES_INPUTS
    from asr.presets import describe, list_presets, preset_dir, preset_path

    dim = feat_dim if feat_dim is not None else GRAVES_INPUTS
    lines = [f"presets in {preset_dir()} (--config GROUP/NAME)"]
    for group, names in list_presets().items():
        note = f"; parameters with {dim} inputs and {num_tokens} outputs" if group == "model" else ""
        lines.append(f"{group}{note}:")
        width = max((len(n) for n in names), default=0)
        for name in names:
            path = preset_path(group, name)
            count = ""
            if group == "model":
                model = AcousticModel(load_config([path]).model, dim, num_tokens)
                count = f"{count_parameters(model):>12,}  "
            lines.append(f"  {group}/{name:<{width}}  {count}"
                         f"{textwrap.shorten(describe(path), 64, placeholder=' ...')}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.graves_table:
        print(graves_table())
        return 0
    if args.list_presets:
        print(presets_listing(args.feat_dim, args.num_tokens))
        return 0
    config = load_config(args.config, args.overrides)
    if args.print_params:
        print_params(config, args.feat_dim, args.num_tokens)
        return 0
    if not args.train or not args.exp_dir:
        args.parser.error("--train and --exp-dir are required (unless --print-params, --graves-table "
                          "or --list-presets)")
    if args.init_from:
        config.train.init_from = args.init_from
    if args.max_bad_utts is not None:
        config.train.max_bad_utts = args.max_bad_utts
    from asr.train.ddp import init_distributed, shutdown

    dist = init_distributed(config.train.device)
    exp_dir = Path(args.exp_dir)
    try:
        # Only rank 0 writes train.log; the other ranks report warnings and errors to stderr.
        setup_logging(args.verbose, exp_dir / "train.log" if dist.is_main else None)
        if not dist.is_main:
            logging.getLogger().setLevel(logging.WARNING)
        return _train(args, config, exp_dir, dist)
    except OSError as exc:
        # Disk full, read-only or unwritable directories: one line naming the file. Files are
        # written atomically, so the previous checkpoint and outputs are intact.
        raise AsrError(
            f"{exc.filename or exp_dir}: {exc.strerror or exc}; free disk space or make "
            f"{exp_dir} writable (or fix the path), then run the same command again to resume"
        ) from None
    finally:
        shutdown()


def _check_shards(config: ExperimentConfig, train_dir: Path) -> None:
    """``train.shards``: complete shards of ``train_dir`` as it is now, at the feature rate
    (one line otherwise)."""
    from asr.data.shards import check_shards
    from asr.train.streaming import shard_root

    tc = config.train
    if not tc.features_on_the_fly or tc.preload:
        raise AsrError(f"train.shards {tc.shards}: streaming from shards needs "
                       "train.features_on_the_fly: true and train.preload: false")
    if tc.shard_buffer < 1:
        raise AsrError(f"train.shard_buffer {tc.shard_buffer}: need at least 1")
    manifest = check_shards(shard_root(tc.shards), train_dir)
    rate = int(manifest["sample_rate"])
    if rate != config.features.sample_rate:
        raise AsrError(f"{tc.shards}: shards at {rate} Hz but features.sample_rate is "
                       f"{config.features.sample_rate}; rerun `asr data make-shards --sample-rate "
                       f"{config.features.sample_rate} {train_dir} {tc.shards}`")
    log.info("%s: training batches stream from %d shards of %d utterances", tc.shards,
             len(manifest["shards"]), manifest["utterances"])


def _train(args: argparse.Namespace, config: ExperimentConfig, exp_dir: Path, dist) -> int:
    log.info("command: %s", " ".join(sys.argv))
    import torch

    from asr.data import read_data_dir
    from asr.data.dataset import load_examples
    from asr.features import build_frontend
    from asr.text import build_tokenizer, load_tokenizer
    from asr.train import Trainer
    from asr.train.consistency import agree_on_data
    from asr.train.data import load_waveforms
    from asr.train.lazy import load_lazy

    if config.train.num_threads > 0:
        torch.set_num_threads(config.train.num_threads)
    train_dir = read_data_dir(args.train)
    if config.train.shards:
        _check_shards(config, train_dir.path)
    tokens_file = exp_dir / "tokens.txt"
    if tokens_file.exists() and not args.no_resume:
        tokenizer = load_tokenizer(tokens_file, config.tokenizer)  # keep ids stable across a resume
    else:
        tokenizer = build_tokenizer(config.tokenizer, (u.text for u in train_dir.utterances))
    tokenizer.check(train_dir.utterances, str(train_dir.path / "text"))
    progress = sys.stderr.isatty() and not args.no_progress and dist.is_main
    subsampling = config.model.frame_stack

    max_bad = config.train.max_bad_utts

    def load(data_dir, max_duration_s=None):
        if config.train.features_on_the_fly and not config.train.preload:
            # Metadata only: the audio is read per batch by the data loader.
            return load_lazy(data_dir, config.features, tokenizer, subsampling, max_duration_s,
                             max_bad_utts=max_bad, dist=dist)
        if config.train.features_on_the_fly:
            return load_waveforms(data_dir, config.features, tokenizer, subsampling, max_duration_s,
                                  progress=progress, max_bad_utts=max_bad)
        frontend = build_frontend(config.features)
        return load_examples(data_dir, frontend, tokenizer, subsampling, max_duration_s,
                             progress=progress, max_bad_utts=max_bad)

    train_set, report = load(train_dir, config.train.max_duration_s)
    report.log(str(train_dir.path))
    log.info("%s: %d utterances, %.2f hours", train_dir.path, len(train_set), sum(e.duration for e in train_set) / 3600)
    dev_set = []
    if args.dev:
        dev_dir = read_data_dir(args.dev)
        tokenizer.check(dev_dir.utterances, str(dev_dir.path / "text"))
        dev_set, dev_report = load(dev_dir)
        dev_report.log(str(dev_dir.path))
        report.unreadable += dev_report.unreadable
    # Every rank drops what any rank could not read, then all must hold the same data.
    train_set, dev_set = agree_on_data(train_set, dev_set, report, dist, str(train_dir.path), args.dev)
    if report.unreadable and dist.is_main:
        atomic_write_text(exp_dir / "bad_utts", report.unreadable_list())
        log.warning("%d utterance(s) with unreadable audio skipped (at most %s allowed); listed in %s",
                    len(report.unreadable), "any" if max_bad < 0 else max_bad, exp_dir / "bad_utts")
    elif dist.is_main:
        (exp_dir / "bad_utts").unlink(missing_ok=True)  # a list from an earlier run is stale now
    if not train_set:
        raise AsrError(f"{train_dir.path}: no usable training utterances (see the warnings above)")
    trainer = Trainer(config, exp_dir, tokenizer, train_set, dev_set, progress=progress, dist=dist,
                      unreadable=report.unreadable)
    trainer.fit(resume=not args.no_resume)
    return 0
