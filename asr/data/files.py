"""The file types of a Kaldi data directory, each with its value parser and writer.

Every file is ``<id> <value>`` per line; what the id names (utterance, recording or speaker)
and what the value must look like depend on the file:

================================  ========  ================================================
file                              id        value
================================  ========  ================================================
``wav.scp``                       reco      path, ``file.ark:offset`` or command ``... |``
``segments``                      utt       ``<reco> <start-s> <end-s>``
``text``                          utt       transcript (may be empty)
``utt2spk``                       utt       speaker id
``spk2utt``                       spk       utterance ids
``spk2gender``                    spk       ``m`` or ``f``
``utt2dur`` / ``reco2dur``        utt/reco  seconds (> 0)
``utt2num_frames``                utt       frame count (integer > 0)
``reco2file_and_channel``         reco      ``<file> <channel>`` (channel ``A`` or ``B``)
``feats.scp`` / ``cmvn.scp``      utt/spk   Kaldi rxspecifier (``file.ark:offset``)
``vad.scp``                       utt       Kaldi rxspecifier
``utt2lang`` / ``utt2uniq``       utt       one token
``utt2warp`` / ``spk2warp``       utt/spk   warp factor in (0.5, 1.5)
================================  ========  ================================================

Without ``segments``, recording ids are utterance ids.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asr.data.tables import c_sort_key, format_float, read_kaldi_lines, write_kaldi_map
from asr.data.utterance import RecordingSegment
from asr.data.wavscp import format_wav_entry, parse_wav_entry
from asr.errors import DataDirError


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} '{text}' is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} '{text}' is not a finite number")
    return value


def _token(value: str, what: str = "value") -> str:
    fields = value.split()
    if len(fields) != 1:
        raise ValueError(f"{what} '{value}' must be one token without spaces")
    return fields[0]


def parse_segment(value: str) -> RecordingSegment:
    fields = value.split()
    if len(fields) != 3:
        raise ValueError(f"expected '<recording> <start> <end>', got '{value}'")
    start = _number(fields[1], "start")
    end = _number(fields[2], "end")
    if start < 0:
        raise ValueError(f"start {fields[1]} is negative")
    if end != -1 and end <= start:
        raise ValueError(f"end {fields[2]} is not after start {fields[1]}")
    return RecordingSegment(fields[0], start, end)


def format_segment(seg: RecordingSegment) -> str:
    return f"{seg.recording} {format_float(seg.start)} {format_float(seg.end)}"


def parse_positive(value: str) -> float:
    number = _number(_token(value), "duration")
    if number <= 0:
        raise ValueError(f"duration {value} is not positive")
    return number


def parse_frames(value: str) -> int:
    token = _token(value)
    if not token.isdigit() or int(token) <= 0:
        raise ValueError(f"frame count '{value}' is not a positive integer")
    return int(token)


def parse_gender(value: str) -> str:
    if value not in ("m", "f"):
        raise ValueError(f"gender '{value}' must be 'm' or 'f'")
    return value


def parse_file_and_channel(value: str) -> tuple[str, str]:
    fields = value.split()
    if len(fields) != 2:
        raise ValueError(f"expected '<file> <channel>', got '{value}'")
    if fields[1] not in ("A", "B", "1"):
        raise ValueError(f"channel '{fields[1]}' must be A or B")
    return fields[0], fields[1]


def parse_warp(value: str) -> float:
    number = _number(_token(value), "warp factor")
    if not 0.5 < number < 1.5:
        raise ValueError(f"warp factor {value} is outside (0.5, 1.5)")
    return number


def parse_utt_list(value: str) -> list[str]:
    fields = value.split()
    if not fields:
        raise ValueError("no utterances")
    return fields


def _same(value: str) -> str:
    return value


@dataclass(frozen=True)
class FileFormat:
    name: str
    index: Literal["utt", "reco", "spk"]  # what the first field names
    parse: Callable[[str], Any]  # value text -> value; ValueError says what is wrong
    format: Callable[[Any], str]
    allow_empty: bool = False


FORMATS: dict[str, FileFormat] = {
    f.name: f
    for f in (
        FileFormat("wav.scp", "reco", parse_wav_entry, format_wav_entry),
        FileFormat("segments", "utt", parse_segment, format_segment),
        FileFormat("text", "utt", _same, _same, allow_empty=True),
        FileFormat("utt2spk", "utt", lambda v: _token(v, "speaker id"), _same),
        FileFormat("spk2utt", "spk", parse_utt_list, " ".join),
        FileFormat("spk2gender", "spk", parse_gender, _same),
        FileFormat("utt2dur", "utt", parse_positive, format_float),
        FileFormat("reco2dur", "reco", parse_positive, format_float),
        FileFormat("utt2num_frames", "utt", parse_frames, str),
        FileFormat("reco2file_and_channel", "reco", parse_file_and_channel, " ".join),
        FileFormat("feats.scp", "utt", _same, _same),
        FileFormat("cmvn.scp", "spk", _same, _same),
        FileFormat("vad.scp", "utt", _same, _same),
        FileFormat("utt2lang", "utt", _token, _same),
        FileFormat("utt2uniq", "utt", lambda v: _token(v, "utterance id"), _same),
        FileFormat("utt2warp", "utt", parse_warp, format_float),
        FileFormat("spk2warp", "spk", parse_warp, format_float),
    )
}


def file_format(path: str | Path, fmt: FileFormat | str | None = None) -> FileFormat:
    if isinstance(fmt, FileFormat):
        return fmt
    name = fmt or Path(path).name
    if name not in FORMATS:
        raise DataDirError(f"{path}: unknown Kaldi file type '{name}' (known: {', '.join(FORMATS)})")
    return FORMATS[name]


def read_file(path: str | Path, fmt: FileFormat | str | None = None) -> dict[str, Any]:
    """Read one data-directory file into ``{id: parsed value}``; the format is chosen by the
    file name unless ``fmt`` names it. Malformed values are errors naming file and line."""
    fmt = file_format(path, fmt)
    out: dict[str, Any] = {}
    for line in read_kaldi_lines(path, allow_empty_value=fmt.allow_empty):
        try:
            out[line.key] = fmt.parse(line.value)
        except ValueError as exc:
            raise DataDirError(f"{path}:{line.lineno}: {exc}") from None
    return out


def write_file(
    path: str | Path, entries: Mapping[str, Any], fmt: FileFormat | str | None = None
) -> None:
    """Write ``{id: value}`` in C-locale order with the file type's own value format."""
    fmt = file_format(path, fmt)
    write_kaldi_map(path, {key: fmt.format(value) for key, value in entries.items()})


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Speakers in C-locale order, each with its utterances in C-locale order."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=c_sort_key):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: spk2utt[spk] for spk in sorted(spk2utt, key=c_sort_key)}


def spk2utt_to_utt2spk(spk2utt: Mapping[str, list[str]]) -> dict[str, str]:
    return {utt: spk for spk, utts in spk2utt.items() for utt in utts}
