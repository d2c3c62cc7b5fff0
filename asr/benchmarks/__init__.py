"""Benchmarks run by ``asr benchmark KIND`` (and the ``tools/bench_KIND.py`` wrappers).

Each module ``asr.benchmarks.<kind>`` defines ``add_arguments(parser)`` and ``run(args) -> int``
and prints its table; ``asr.cli.benchmark`` finds the modules here and registers one kind each.
"""
