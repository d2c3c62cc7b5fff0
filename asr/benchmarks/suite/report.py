"""The report of ``asr benchmark all``: one Markdown file and a JSON file beside it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from asr.benchmarks.suite.runner import Record

MD_NAME, JSON_NAME = "gpu_report.md", "gpu_report.json"
PYTEST_TAIL = 25  # lines of pytest's output kept in the report


def _machine_table(facts: dict) -> list[str]:
    if facts.get("cuda_usable"):
        gpu = (f"{facts['gpu']} ({facts.get('gpu_memory_gib')} GiB, compute capability "
               f"{facts.get('gpu_capability')}), driver {facts.get('nvidia_driver') or 'unknown'}")
    elif str(facts.get("cuda_reason", "")).startswith("not probed"):
        gpu = facts["cuda_reason"]
    else:
        gpu = f"none usable: {facts.get('cuda_reason', 'unknown')}"
    load = facts.get("load_avg")
    cpu = f"{facts['cpu']}, {facts['cores']} cores" + (
        f", load average {load[0]} / {load[1]} / {load[2]} at the start" if load else "")
    torch = facts.get("torch") or "not importable"
    if facts.get("torch"):
        torch += f" (CUDA {facts.get('torch_cuda') or 'none'}"
        torch += f", cuDNN {facts['cudnn']})" if facts.get("cudnn") else ")"
    packages = ", ".join(f"{name} {version or 'missing'}" for name, version in facts["packages"].items())
    return ["| machine | |", "|---|---|", f"| GPU | {gpu} |", f"| CPU | {cpu} |",
            f"| torch | {torch}; torchaudio {facts.get('torchaudio', '-')} |",
            f"| Python | {facts['python']}, {facts['platform']} |", f"| packages | {packages} |",
            f"| date | {facts['date']} |", f"| commit | {facts['commit']} |"]


def shown_command(command: list[str] | None, work: Path, root: Path) -> str:
    """A step's command as one would type it: ``asr ...``, paths relative to ``root`` (the
    directory the run started in) and the work dir as ``$WORK``."""
    if not command:
        return ""
    parts = list(command)
    if parts[1:3] == ["-m", "asr.cli.main"]:
        parts = ["asr", *parts[3:]]
    elif parts[1:2] == ["-m"]:
        parts = ["python", *parts[1:]]
    text = " ".join(parts)
    return text.replace(str(work), "$WORK").replace(f"{root}/", "")


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def _output_block(record: Record) -> list[str]:
    """A step's printed output as Markdown: its tables kept, its other lines as text."""
    if record.name == "gpu-tests":
        tail = record.output.strip().splitlines()[-PYTEST_TAIL:]
        return ["```", *tail, "```"] if tail else []
    if record.name == "digits-train" and isinstance(record.figures, dict):
        epochs = record.figures.get("epochs", [])
        if not epochs:
            return []
        metric = epochs[0].get("dev_metric", "WER")
        lines = [f"| epoch | seconds | frames/s | dev {metric} % |", "|---:|---:|---:|---:|"]
        for e in epochs:
            lines.append(f"| {e['epoch']} | {e.get('seconds', '')} | {e.get('frames_per_s', '')} | "
                         f"{e.get('dev_rate', '')} |")
        if record.figures.get("exported"):
            lines += ["", f"exported: {record.figures['exported']}"]
        return lines
    lines: list[str] = []
    for raw in record.output.strip().splitlines():
        line = raw.rstrip()
        if line.startswith("|"):
            lines.append(line)
        elif line.strip():
            if lines and lines[-1].startswith("|"):
                lines.append("")
            lines += [line.lstrip("# ").strip(), ""]
    return lines


def render_markdown(facts: dict, records: list[Record], options: dict, work: Path, root: Path) -> str:
    mode = f"`{options['command']}`" + (
        " (--quick: tiny sizes that check each step end to end; its figures measure nothing)"
        if options["quick"] else "")
    total = sum(r.seconds or 0.0 for r in records)
    out = ["# GPU report", "", f"{mode}; device of the rows: **{options['device']}**; "
           f"{total:.0f} s of steps.", "", *_machine_table(facts), "", "## Steps", "",
           "| step | device | status | seconds | budget s | result |", "|---|---|---|---:|---:|---|"]
    for r in records:
        seconds = f"{r.seconds:.1f}" if r.seconds is not None else ""
        budget = f"{r.budget_s:.0f}" if r.budget_s is not None else ""
        result = r.summary if r.status == "ok" else r.reason
        out.append(f"| {r.name} | {r.device} | {r.status} | {seconds} | {budget} | {_cell(result)} |")
    by_reason: dict[str, list[str]] = {}
    for r in records:
        if r.status == "skipped":
            by_reason.setdefault(r.reason or "", []).append(f"{r.name} ({r.device})")
    if by_reason:
        out += ["", "## Skipped", ""]
        out += [f"- {', '.join(names)}: {reason}" for reason, names in by_reason.items()]
    for r in records:
        if r.status == "skipped":
            continue
        out += ["", f"## {r.name} ({r.device}): {r.title}", ""]
        if r.command:
            out += [f"`{shown_command(r.command, work, root)}`", ""]
        if r.extra.get("model_origin"):
            out += [f"model: {r.extra['model_origin']}", ""]
        if r.status != "ok":
            out += [f"**{r.status}**: {r.reason}", ""]
        out += _output_block(r)
    return "\n".join(out).rstrip() + "\n"


def write_report(out_dir: Path, facts: dict, records: list[Record], options: dict, work: Path,
                 root: Path) -> tuple[Path, Path]:
    """Write ``gpu_report.md`` and ``gpu_report.json`` into ``out_dir``; their paths."""
    from asr.utils import atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / MD_NAME, out_dir / JSON_NAME
    atomic_write_text(md, render_markdown(facts, records, options, work, root))
    steps = []
    for r in records:
        step = asdict(r)
        step["command"] = shown_command(r.command, work, root) or None
        step.pop("output")
        steps.append(step)
    payload = {"machine": facts, "options": options, "steps": steps,
               "skipped": [{"name": r.name, "device": r.device, "reason": r.reason}
                           for r in records if r.status == "skipped"]}
    atomic_write_text(js, json.dumps(payload, indent=2, default=str) + "\n")
    for path in (md, js):  # a report to hand round, not a private temporary file
        path.chmod(0o644)
    return md, js
