"""``asr models``: list and install models in the model store."""

from __future__ import annotations

import argparse

from asr import store
from asr.cli.common import add_verbosity


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list or install models in the model store",
                              description=f"The model store is $ASR_MODEL_DIR, else ~/.cache/asr/models (now {store.store_dir()}).")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="list installed models (* marks the default)")
    add_verbosity(ls)
    ls.set_defaults(func=run_list)
    inst = sub.add_parser("install", help="copy a model directory into the store")
    inst.add_argument("model_dir", help="a model directory, e.g. exp/NAME/final")
    inst.add_argument("--name", required=True, help="name to install it under")
    inst.add_argument("--default", action="store_true", help="make it the default model")
    add_verbosity(inst)
    inst.set_defaults(func=run_install)


def run_list(args: argparse.Namespace) -> int:
    default = store.default_model()
    names = store.list_models()
    if not names:
        print(f"no models installed in {store.store_dir()}")
    for name in names:
        print(f"{'*' if name == default else ' '} {name}\t{store.store_dir() / name}")
    return 0


def run_install(args: argparse.Namespace) -> int:
    target = store.install(args.model_dir, args.name, make_default=args.default)
    print(f"installed {args.model_dir} as '{args.name}' in {target}{' (default)' if args.default else ''}")
    return 0
