"""``asr data make-shards|check-shards``: WebDataset tar shards of a data directory."""

from __future__ import annotations

import argparse

from asr.cli.common import add_verbosity


def add_parsers(actions: argparse._SubParsersAction) -> None:
    """Register this module's actions under ``asr data``."""
    p = actions.add_parser(
        "make-shards",
        help="write WebDataset tar shards of a data directory (a streaming cache)",
        description="Decode every utterance of DATA_DIR at --sample-rate and write "
        "OUT_DIR/shard-NNNNNN.tar (per utterance <key>.flac and <key>.json) and "
        "OUT_DIR/shards.yaml, which records the data dir it came from. Needs webdataset "
        "(pip install 'asr[shards]').",
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="Kaldi data directory (wav.scp)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="where the shards and shards.yaml go")
    p.add_argument("--sample-rate", type=int, default=16000, help="Hz (default 16000)")
    p.add_argument("--utts-per-shard", type=int, default=1000,
                   help="utterances per shard, the last one fewer (default 1000)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the shuffle that assigns utterances to shards (default 0)")
    p.add_argument("--allow-pipes", action="store_const", const=True, default=None,
                   help="run commands in wav.scp ('cmd |'); also ASR_ALLOW_PIPES=1")
    add_verbosity(p)
    p.set_defaults(func=run_make_shards)

    p = actions.add_parser(
        "check-shards",
        help="check that shards are complete and match their data directory",
        description="Check OUT_DIR/shards.yaml: every shard present with its size, and "
        "DATA_DIR's wav.scp, segments, text, utt2spk and utt2dur unchanged since the shards "
        "were written (exit 1 with one line otherwise).",
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="shard directory (shards.yaml)")
    p.add_argument("data_dir", metavar="DATA_DIR", help="the data directory they came from")
    add_verbosity(p)
    p.set_defaults(func=run_check_shards)


def _summary(out_dir: str, manifest: dict) -> str:
    return (f"{out_dir}: {len(manifest['shards'])} shards, {manifest['utterances']} utterances, "
            f"{float(manifest['hours']):.2f} hours at {manifest['sample_rate']} Hz")


def run_make_shards(args: argparse.Namespace) -> int:
    from asr.data.shards import write_shards  # torch, webdataset, audio: only for this action
    from asr.utils import setup_logging

    setup_logging(args.verbose)
    manifest = write_shards(args.data_dir, args.out_dir, args.sample_rate,
                            utts_per_shard=args.utts_per_shard, seed=args.seed,
                            allow_pipes=args.allow_pipes)
    print(_summary(args.out_dir, manifest))
    if manifest["skipped"]:
        utt, reason = manifest["skipped"][0]
        print(f"{args.data_dir}: skipped {len(manifest['skipped'])} utterance(s) with unreadable "
              f"audio (first '{utt}': {reason}); they are listed in shards.yaml")
    return 0


def run_check_shards(args: argparse.Namespace) -> int:
    from asr.data.shards import check_shards
    from asr.utils import setup_logging

    setup_logging(args.verbose)
    manifest = check_shards(args.out_dir, args.data_dir)
    print(_summary(args.out_dir, manifest) + f"; up to date with {args.data_dir}")
    return 0
