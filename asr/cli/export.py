"""``asr export``: a model directory's acoustic model as TorchScript or ONNX."""

from __future__ import annotations

import argparse

from asr.cli.common import add_verbosity


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export a model to TorchScript or ONNX",
        description="Export the acoustic model of a model directory: features (1, frames, "
        "feat_dim) -> CTC log-probs (1, frames', tokens), any number of frames. Greedy search "
        "over the output gives transcribe's tokens (see docs/transcribe.md).")
    p.add_argument("--model", "-m", required=True, help="model directory or name in the store")
    p.add_argument("--format", "-f", required=True, choices=["torchscript", "onnx"],
                   dest="export_format", help="torchscript (model.ts) or onnx (model.onnx)")
    p.add_argument("--output", "-o", help="file to write (default: model.ts or model.onnx in "
                   "the model directory); config.yaml and tokens.txt are copied beside it")
    add_verbosity(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.export import export_model  # torch: when the command runs, not for --help
    from asr.store import resolve

    path = export_model(resolve(args.model), args.export_format, args.output)
    print(f"wrote {path}")
    return 0
