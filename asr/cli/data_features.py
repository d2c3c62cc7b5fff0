"""``asr data compute-features``: dump features of a data directory to feats.scp/ark."""

from __future__ import annotations

import argparse
import logging

from asr.cli.common import add_verbosity

log = logging.getLogger("asr.data")


def add_parsers(actions: argparse._SubParsersAction) -> None:
    """Register this module's actions under ``asr data``."""
    p = actions.add_parser(
        "compute-features",
        help="dump features to feats.scp/ark (Kaldi format)",
        description="Compute the features of every utterance of DATA_DIR (as the config's "
        "features section says) and write DATA_DIR/feats.scp, utt2num_frames, frame_shift and "
        "feats.yaml, with the arks under --ark-dir; optionally Kaldi CMVN statistics "
        "(cmvn.scp). Training reads the dump with --set features.source=feats.scp.",
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="Kaldi data directory (wav.scp)")
    p.add_argument("--nj", type=int, default=1, help="parallel jobs (processes); default 1")
    p.add_argument("--config", action="append", default=[],
                   help="YAML config (its features section is used); repeat to merge in order")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE", help="override one config value, e.g. "
                   "--set features.type=fbank")
    p.add_argument("--ark-dir", help="where the arks go (default DATA_DIR/data)")
    p.add_argument("--cmvn", choices=("none", "speaker", "utterance", "global"), default="none",
                   help="also write cmvn.scp: Kaldi CMVN statistics per speaker (utt2spk), per "
                   "utterance, or one 'global' entry (default none)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--batch-seconds", type=float, default=200.0,
                   help="padded audio seconds per forward pass (default 200)")
    add_verbosity(p)
    p.set_defaults(func=run_compute_features)


def run_compute_features(args: argparse.Namespace) -> int:
    # torch: not for the other `asr data` actions
    from asr.config import load_config
    from asr.features.dump import compute_features
    from asr.utils import resolve_device, setup_logging

    setup_logging(args.verbose)
    config = load_config(args.config, args.overrides)
    device = str(resolve_device(args.device))
    report = compute_features(
        args.data_dir, config.features, nj=args.nj, ark_dir=args.ark_dir, cmvn=args.cmvn,
        device=device, batch_seconds=args.batch_seconds,
    )
    speed = report.audio_seconds / report.seconds if report.seconds else 0.0
    print(
        f"{args.data_dir}: {report.utterances} utterances, {report.frames} frames of "
        f"{config.features.type} features, {report.audio_seconds:.1f} s of audio in "
        f"{report.seconds:.1f} s ({speed:.0f} audio-s/s, {args.nj} job(s))"
    )
    if report.failed:
        utt, reason = report.failed[0]
        print(
            f"{args.data_dir}: skipped {len(report.failed)} utterance(s) with unreadable audio "
            f"(first '{utt}': {reason}); they have no entry in feats.scp"
        )
    return 0
