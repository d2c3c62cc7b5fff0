"""Output formats for transcripts."""

from __future__ import annotations

import json
from pathlib import Path

from asr.inference import Result
from asr.utils import atomic_write_text

FORMATS = ("txt", "json")


def format_result(result: Result, fmt: str) -> str:
    if fmt == "txt":
        return result.text + "\n"
    if fmt == "json":
        return json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"
    raise ValueError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")


def write_result(result: Result, audio_path: str | Path, out_dir: str | Path, fmt: str) -> Path:
    """Write ``<out_dir>/<audio stem>.<fmt>`` atomically; return its path."""
    path = Path(out_dir) / f"{Path(audio_path).stem}.{fmt}"
    atomic_write_text(path, format_result(result, fmt))
    return path
