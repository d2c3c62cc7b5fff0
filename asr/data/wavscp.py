"""``wav.scp`` entries: what each kind of value means, how it is written, whether it runs a
command, and whether commands may run.

An entry (the value after the recording id) is one of

- a path: ``/data/a.wav`` (any format that :mod:`asr.audio` decodes);
- an extended filename ``file.ark:123``: a WAV record at byte 123 of a Kaldi archive (kaldiio);
- Kaldi's speed-perturbation lines, exactly as ``utils/perturb_data_dir_speed.sh`` writes them::

      sox -t wav a.wav -t wav - speed 0.9 |
      wav-copy a.ark:123 - | sox -t wav - -t wav - speed 0.9 |
      <any entry ending in |> sox -t wav - -t wav - speed 0.9 |

  These are applied in process (:func:`asr.audio.speed_perturb`, no shell, no sox) and need no
  permission unless what they read is itself a command;
- a command ``cmd args |`` whose stdout is the audio. Commands run shell code written in a data
  file, so they run only when the user allows it (:func:`pipes_allowed`: ``--allow-pipes`` or
  ``ASR_ALLOW_PIPES=1``; :func:`asr.data.datadir.read_data_dir` checks this).

Reading the audio of an entry is :mod:`asr.data.wav_audio`; this module only parses and
writes, so that reading a data directory needs no audio library.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from asr.data.tables import format_float

PIPES_ENV = "ASR_ALLOW_PIPES"


@dataclass(frozen=True)
class WavPath:
    path: str


@dataclass(frozen=True)
class WavArk:
    path: str
    offset: int


@dataclass(frozen=True)
class WavPipe:
    command: str  # without the final "|"


@dataclass(frozen=True)
class WavSpeed:
    source: WavEntry
    factor: float


WavEntry = Union[WavPath, WavArk, WavPipe, WavSpeed]  # noqa: UP007 (runtime alias)

_NUM = r"[0-9]*\.?[0-9]+"
_SPEED_FILE = re.compile(
    rf"sox\s+(?:-t\s+wav\s+)?(?P<src>[^\s|]+)\s+-t\s+wav\s+-\s+speed\s+(?P<factor>{_NUM})\s*\|"
)
_SPEED_PIPE = re.compile(
    rf"(?P<inner>.*\|)\s*sox\s+-t\s+wav\s+-\s+-t\s+wav\s+-\s+speed\s+(?P<factor>{_NUM})\s*\|"
)
_WAV_COPY = re.compile(r"wav-copy\s+(?P<src>\S+:[0-9]+)\s+-\s*\|")
_ARK = re.compile(r"(?P<path>.+):(?P<offset>[0-9]+)")


def _plain(value: str) -> WavPath | WavArk:
    match = _ARK.fullmatch(value)
    if match:
        return WavArk(match["path"], int(match["offset"]))
    return WavPath(value)


def parse_wav_entry(value: str) -> WavEntry:
    """The kind of a ``wav.scp`` value (never fails: anything else is a path)."""
    value = value.strip()
    match = _SPEED_FILE.fullmatch(value)
    if match and match["src"] != "-" and float(match["factor"]) > 0:
        return WavSpeed(_plain(match["src"]), float(match["factor"]))
    match = _SPEED_PIPE.fullmatch(value)
    if match and float(match["factor"]) > 0:
        inner = match["inner"].strip()
        copy = _WAV_COPY.fullmatch(inner)
        source = _plain(copy["src"]) if copy else parse_wav_entry(inner)
        return WavSpeed(source, float(match["factor"]))
    if value.endswith("|"):
        return WavPipe(value[:-1].strip())
    return _plain(value)


def format_wav_entry(entry: WavEntry) -> str:
    """The ``wav.scp`` value of ``entry``, in Kaldi's own spelling."""
    if isinstance(entry, WavPath):
        return entry.path
    if isinstance(entry, WavArk):
        return f"{entry.path}:{entry.offset}"
    if isinstance(entry, WavPipe):
        return f"{entry.command} |"
    factor = format_float(entry.factor)
    source = entry.source
    if isinstance(source, WavPath):
        return f"sox -t wav {source.path} -t wav - speed {factor} |"
    if isinstance(source, WavArk):
        return f"wav-copy {format_wav_entry(source)} - | sox -t wav - -t wav - speed {factor} |"
    return f"{format_wav_entry(source)} sox -t wav - -t wav - speed {factor} |"


def pipes_allowed(allow: bool | None = None) -> bool:
    """Whether ``wav.scp`` commands (``cmd |``) may run: ``allow`` when given, else the
    environment variable ``ASR_ALLOW_PIPES`` (1/true/yes)."""
    if allow is not None:
        return allow
    return os.environ.get(PIPES_ENV, "").strip().lower() in ("1", "true", "yes")


def needs_shell(entry: WavEntry) -> bool:
    """Whether reading ``entry`` runs a command written in the data."""
    if isinstance(entry, WavPipe):
        return True
    if isinstance(entry, WavSpeed):
        return needs_shell(entry.source)
    return False


def resolve_paths(entry: WavEntry, base: Path) -> str:
    """``entry`` formatted with relative file paths made absolute against ``base``
    (commands are left alone: they run in the current directory)."""

    def fix(e: WavEntry) -> WavEntry:
        if isinstance(e, WavPath) and not Path(e.path).is_absolute():
            return WavPath(str(base / e.path))
        if isinstance(e, WavArk) and not Path(e.path).is_absolute():
            return WavArk(str(base / e.path), e.offset)
        if isinstance(e, WavSpeed):
            return WavSpeed(fix(e.source), e.factor)
        return e

    return format_wav_entry(fix(entry))
