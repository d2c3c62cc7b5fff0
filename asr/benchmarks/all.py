"""Every GPU figure in one run, written as one Markdown report with a JSON file beside it.

``asr benchmark all [--device cuda|cpu|auto] [--out DIR] [--quick]`` runs each row as its own
step, in a child process with a time budget: the ``gpu``-marked tests; the features benchmark
(batched front ends against librosa); the train benchmark (our trainer against the bare loop,
fp32 and bf16, peak GPU memory) on the digits GPU preset's shape; a few epochs of the digits
GPU preset (seconds per epoch, dev WER); the decode benchmark (greedy, prefix beam, torchaudio's
CUDA beam) and the transcribe benchmark (the digits model and the untrained 5 x 250 preset) on
the digits test set. The digits data dirs are built from FSDD first. A step that fails or
overruns its budget is recorded with its error line and the run goes on.

Without CUDA (or with ``--device cpu``) the CPU rows run and every GPU row is listed as
skipped, with the reason. ``--quick`` runs tiny sizes, three steps at a time: a check that every
step works, not a measurement. Writes ``gpu_report.md``, ``gpu_report.json`` and every step's
output (``gpu_report.log``) into ``--out``; exit code 1 when a row failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from asr.benchmarks.suite.lanes import run_in_lanes
from asr.benchmarks.suite.plan import (
    PROFILES,
    RUN_ORDER,
    STEPS,
    Context,
    StepSpec,
    Unavailable,
    environment,
    load_figures,
)
from asr.benchmarks.suite.runner import Record, run_command

MIN_STEP_S = 10.0  # a step with less time left than this is not started
MAX_MINUTES = {"gpu": 8.0, "cpu": 15.0, "quick": 3.0}
QUICK_LANES = 3  # --quick: three steps at a time (its figures measure nothing anyway)
LOG_NAME = "gpu_report.log"  # every step's full output, beside the report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                        help="cuda: the GPU rows; cpu: the CPU rows, GPU rows listed as skipped; "
                        "auto: cuda when usable, else cpu (default)")
    parser.add_argument("--out", default="gpu_report",
                        help="report directory (default: gpu_report)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes: checks that every step runs, in under a minute on a CPU")
    parser.add_argument("--fsdd", default=os.environ.get("FSDD_DIR"),
                        help="FSDD corpus (holding recordings/), for the digits data and the "
                        "features rows (default: $FSDD_DIR, the variable the recipes read)")
    parser.add_argument("--model", help="trained digits model for the decode and transcribe rows "
                        "(default: the model of this run's digits-train step)")
    parser.add_argument("--tests", help="a checkout's tests/ directory, for the gpu-marked tests "
                        "(tools/gpu_report.sh gives it)")
    parser.add_argument("--train-config",
                        help="the digits GPU preset's training settings, recipes/digits/conf/gpu.yaml "
                        "of a checkout, for the digits-train step (tools/gpu_report.sh gives it)")
    parser.add_argument("--steps", help="comma-separated subset of the steps: "
                        + ", ".join(s.name for s in STEPS) + " (default: all)")
    parser.add_argument("--max-minutes", type=float,
                        help="whole-run limit; each step gets at most what is left of it "
                        "(default: 8 on a GPU, 15 for the CPU rows, 3 with --quick)")
    parser.add_argument("--work-dir", help="where data, models and logs go (default: a temporary "
                        "directory, removed at the end)")


def _device(requested: str, facts: dict) -> tuple[str, str | None]:
    """The device of this run's rows, and why GPU rows are not run (None when they are)."""
    usable, why = facts.get("cuda_usable", False), facts.get("cuda_reason", "CUDA is not usable")
    if requested == "cpu":
        return "cpu", "--device cpu (GPU rows need --device cuda or auto on a CUDA machine)"
    if requested == "auto" and not usable:
        return "cpu", f"no CUDA: {why}"
    return "cuda", None


def _rows(specs: list[StepSpec], device: str) -> list[tuple[StepSpec, str]]:
    """(step, device) in run order: setup steps, then each step's row on the run's device."""
    rows = []
    for spec in specs:
        if spec.setup:
            rows.append((spec, "cpu"))
        elif device == "cuda" and spec.gpu:
            rows.append((spec, "cuda"))
        elif device == "cpu":
            if spec.cpu:
                rows.append((spec, "cpu"))
            if spec.gpu:
                rows.append((spec, "cuda"))  # listed as skipped
    return rows


def _run_row(ctx: Context, spec: StepSpec, device: str, budget: float, logs: Path) -> Record:
    record = Record(spec.name, device, spec.title, "failed", budget_s=budget)
    try:
        invocation = spec.build(ctx, device)
    except Unavailable as exc:
        record.reason = str(exc)
        return record
    if spec.name in ("decode", "transcribe"):
        record.extra["model_origin"] = "{1} ({0})".format(*ctx.digits_model())
    record.command = invocation.command
    outcome = run_command(invocation.command, budget, logs / f"{spec.name}-{device}", Path.cwd(),
                          environment(device, ctx.sizes.threads))
    record.status, record.seconds, record.reason = outcome.status, outcome.seconds, outcome.error
    record.output = outcome.stdout
    record.figures = load_figures(invocation)
    if spec.after is not None:
        spec.after(ctx, record)
    if record.status == "ok":
        record.summary = spec.summarize(record)
    elif record.status == "failed" and spec.explain_failure is not None:
        record.reason = spec.explain_failure(record)
    return record


def _append_log(path: Path, record: Record, prefix: Path) -> None:
    with path.open("a") as log:
        log.write(f"\n===== {record.name} ({record.device}): {record.status}, "
                  f"{record.seconds or 0:.1f} s\n$ {' '.join(record.command or [])}\n")
        for suffix in (".out", ".err"):
            part = prefix.with_suffix(suffix)
            if part.is_file():
                log.write(part.read_text(errors="replace"))


def run(args: argparse.Namespace) -> int:
    from asr.benchmarks.suite.machine import machine_facts
    from asr.benchmarks.suite.report import write_report
    from asr.errors import AsrError

    specs = list(STEPS)
    if args.steps:
        wanted = [s.strip() for s in args.steps.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {s.name for s in specs})
        if unknown:
            names = ", ".join(s.name for s in specs)
            raise AsrError(f"--steps: unknown {', '.join(unknown)}; use {names}")
        # The listed steps, and the setup steps they need (not the other steps they follow).
        needed = {need for s in specs if s.name in wanted for need in s.needs}
        specs = [s for s in specs if s.name in wanted or (s.setup and s.name in needed)]
    if not args.fsdd:
        raise AsrError("where is FSDD? Give --fsdd DIR (holding recordings/) or set $FSDD_DIR")
    fsdd = Path(args.fsdd)
    if not (fsdd / "recordings").is_dir():
        raise AsrError(f"{fsdd}: no FSDD recordings/ here; give --fsdd DIR or set FSDD_DIR")
    started = time.monotonic()
    facts = machine_facts(probe_cuda=args.device != "cpu")
    device, gpu_skip = _device(args.device, facts)
    profile = "quick" if args.quick else ("gpu" if device == "cuda" else "cpu")
    sizes = PROFILES[profile]
    if args.max_minutes is None:
        args.max_minutes = MAX_MINUTES[profile]
    out = Path(args.out)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="asr-bench-all."))
    def given(path: str | None) -> Path | None:
        return Path(path).resolve() if path else None

    ctx = Context(work, fsdd.resolve(), device, sizes, given(args.model), given(args.tests),
                  given(args.train_config))
    for name, path in (("--tests", ctx.tests), ("--train-config", ctx.train_config),
                       ("--model", ctx.model)):
        if path is not None and not path.exists():
            raise AsrError(f"{name} {path}: not found")
    command = f"asr benchmark all --device {args.device}" + (" --quick" if args.quick else "")
    options = {"device": device, "requested_device": args.device, "quick": args.quick,
               "profile": profile, "max_minutes": args.max_minutes, "command": command}
    print(f"asr benchmark all: rows on {device} ({profile} sizes); {facts['cpu']}, "
          f"GPU: {facts.get('gpu') or 'none'}; work dir {work}", file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / LOG_NAME).write_text(f"# {command}: the output of every step\n")
    cuda_error = (f"--device cuda, but CUDA is not usable here: {facts.get('cuda_reason')}"
                  if args.device == "cuda" and not facts.get("cuda_usable") else None)
    rows = _rows(specs, device)
    records: dict[int, Record] = {}

    def start(row: tuple[StepSpec, str]) -> Record:
        spec, row_device = row
        left = args.max_minutes * 60 - (time.monotonic() - started)
        budget = min(sizes.budgets[spec.name], left)
        if row_device == "cuda" and gpu_skip:
            return Record(spec.name, "cuda", spec.title, "skipped", reason=gpu_skip)
        if cuda_error and (row_device == "cuda" or spec.setup):
            if spec.setup:
                return Record(spec.name, row_device, spec.title, "skipped",
                              reason="no row to run it for (CUDA is not usable)")
            return Record(spec.name, "cuda", spec.title, "failed", reason=cuda_error)
        if budget < MIN_STEP_S:
            return Record(spec.name, row_device, spec.title, "skipped",
                          reason=f"out of time (--max-minutes {args.max_minutes:g})")
        print(f"[{time.monotonic() - started:6.1f} s] {spec.name} ({row_device}), budget "
              f"{budget:.0f} s", file=sys.stderr, flush=True)
        return _run_row(ctx, spec, row_device, budget, work / "logs")

    def finish(index: int, record: Record) -> None:
        records[index] = record
        ctx.records[f"{record.name}/{record.device}"] = record
        if record.command:
            _append_log(out / LOG_NAME, record, work / "logs" / f"{record.name}-{record.device}")
        if record.status in ("failed", "timeout"):
            print(f"  {record.name} ({record.device}) {record.status}: {record.reason}",
                  file=sys.stderr, flush=True)
        # After every step, so that a run cut short still leaves its report.
        write_report(out, facts, [records[i] for i in sorted(records)], options, work, Path.cwd())

    order = sorted(range(len(rows)), key=lambda i: RUN_ORDER.index(rows[i][0].name))

    def needs(k: int) -> set[int]:
        wanted = set(rows[order[k]][0].needs)
        return {j for j, i in enumerate(order) if rows[i][0].name in wanted}

    try:
        # Parallel lanes only where the figures measure nothing: timed rows run alone.
        run_in_lanes([(i, rows[i]) for i in order], QUICK_LANES if args.quick else 1, needs,
                     lambda job: (job[0], start(job[1])), lambda _, done: finish(*done))
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    ordered = [records[i] for i in sorted(records)]
    md, js = write_report(out, facts, ordered, options, work, Path.cwd())
    print(md.read_text())
    failed = [r for r in ordered if r.status in ("failed", "timeout")]
    print(f"asr benchmark all: {md} and {js}; {len(failed)} of {len(ordered)} rows failed"
          + (f" ({', '.join(f'{r.name}/{r.device}' for r in failed)})" if failed else ""),
          file=sys.stderr)
    return 1 if failed else 0
