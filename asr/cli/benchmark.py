"""``asr benchmark``: the model x data table, and one subcommand per benchmark module.

``asr benchmark --model M1 [M2 ...] --data D1 [D2 ...]`` runs the model x data table
(:mod:`asr.benchmarks.models`). ``asr benchmark KIND ...`` runs ``asr.benchmarks.<KIND>``;
kinds are found with :mod:`pkgutil`, so a new module appears as a subcommand by itself. A
kind's module is imported only when that kind is run (or its help shown), so that a
benchmark with a missing optional dependency cannot break the other commands.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
from pathlib import Path

from asr.cli.common import add_verbosity

DEFAULT_KIND = "models"  # what the bare form runs


def kinds() -> list[str]:
    """Names of the benchmark modules in :mod:`asr.benchmarks`."""
    import asr.benchmarks

    return sorted(m.name for m in pkgutil.iter_modules(asr.benchmarks.__path__) if not m.ispkg)


def _summary(kind: str) -> str:
    """The first line of a benchmark module's docstring, read without importing it."""
    import asr.benchmarks

    for folder in asr.benchmarks.__path__:
        path = Path(folder) / f"{kind}.py"
        if path.is_file():
            try:
                doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
            except (OSError, SyntaxError, UnicodeDecodeError):
                doc = None
            if doc:
                return doc.strip().splitlines()[0]
    return f"the {kind} benchmark"


class _KindParser(argparse.ArgumentParser):
    """A subcommand parser that imports its benchmark module the first time it is used."""

    def __init__(self, *args, kind: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._kind = kind
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            module = importlib.import_module(f"asr.benchmarks.{self._kind}")
        except ImportError as exc:
            self.error(f"cannot load the {self._kind} benchmark ({exc}); install its extras "
                       "with pip install -e '.[bench]'")
        self.description = module.__doc__
        module.add_arguments(self)
        if "-v" not in self._option_string_actions:
            add_verbosity(self)
        self.set_defaults(func=module.run)

    def parse_known_args(self, args=None, namespace=None):
        self._load()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._load()
        return super().format_help()


def _run_default(args: argparse.Namespace) -> int:
    """The bare form: the model x data table, which needs --model and --data."""
    if not args.model or not args.data:
        args.benchmark_parser.error(
            "give --model M [M ...] and --data D [D ...] for the model x data table, or a "
            f"benchmark KIND ({', '.join(kinds())})"
        )
    from asr.benchmarks import models

    return models.run(args)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``asr benchmark`` with the model x data options and one subcommand per kind."""
    p = subparsers.add_parser(
        "benchmark",
        help="model x data WER/speed table, or a benchmark KIND (one table per run)",
        description="Without KIND: decode every --data directory with every --model and "
        "write one table (model, data, decoder, WER, CER, RTF, utterances/s, device) as "
        "Markdown, CSV and a WER-against-RTF plot. With KIND: run that benchmark "
        "(`asr benchmark KIND --help`).",
    )
    from asr.benchmarks import models

    models.add_arguments(p, required=False)
    add_verbosity(p)
    p.set_defaults(func=_run_default, benchmark_parser=p)
    sub = p.add_subparsers(dest="benchmark_kind", metavar="KIND", parser_class=_KindParser)
    for kind in kinds():
        sub.add_parser(kind, kind=kind, help=_summary(kind))
