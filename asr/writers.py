"""Output formats for transcripts: txt, json, srt, vtt, tsv, ctm (``transcribe -f``).

=======  ======================================================================================
txt      the transcript, one line
json     ``text``, ``duration``, ``segments`` (start, end, text) and ``words`` (word, start, end,
         confidence); times in seconds
srt      SubRip cues, one per segment (per word with ``word_timestamps``), ``HH:MM:SS,mmm``
vtt      WebVTT: the same cues, ``HH:MM:SS.mmm``
tsv      ``start<TAB>end<TAB>text`` in integer milliseconds with a header line, one row per
         segment (per word with ``word_timestamps``)
ctm      NIST CTM, one word per line: ``<name> 1 <start> <duration> <word> <confidence>``
=======  ======================================================================================
"""

from __future__ import annotations

import json
from pathlib import Path

from asr.decode.ctm import ctm_lines
from asr.transcript import Result
from asr.utils import atomic_write_text

FORMATS = ("txt", "json", "srt", "vtt", "tsv", "ctm")
ALL = "all"


def _cues(result: Result, word_timestamps: bool) -> list[tuple[float, float, str]]:
    if word_timestamps and result.words:
        return [(w.start, w.end, w.word) for w in result.words]
    return [(s.start, s.end, s.text) for s in result.segments]


def timestamp(seconds: float, separator: str = ".") -> str:
    """``HH:MM:SS.mmm`` (``separator`` ``,`` for SubRip) of a non-negative time in seconds."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _clean(text: str) -> str:
    # A cue's text must not contain a blank line (it would end the cue) nor "-->".
    return " ".join(text.split()).replace("-->", "->")


def format_result(result: Result, fmt: str, name: str = "utt", word_timestamps: bool = False) -> str:
    """``result`` as the text of output format ``fmt`` (see the module's table); ``name``
    is the utterance name of CTM lines."""
    if fmt == "txt":
        return result.text + "\n"
    if fmt == "json":
        return json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "srt":
        cues = _cues(result, word_timestamps)
        return "".join(f"{i}\n{timestamp(a, ',')} --> {timestamp(b, ',')}\n{_clean(t)}\n\n"
                       for i, (a, b, t) in enumerate(cues, 1))
    if fmt == "vtt":
        cues = _cues(result, word_timestamps)
        return "WEBVTT\n\n" + "".join(f"{timestamp(a)} --> {timestamp(b)}\n{_clean(t)}\n\n"
                                      for a, b, t in cues)
    if fmt == "tsv":
        rows = [f"{round(a * 1000)}\t{round(b * 1000)}\t{_clean(t)}\n"
                for a, b, t in _cues(result, word_timestamps)]
        return "start\tend\ttext\n" + "".join(rows)
    if fmt == "ctm":
        # CTM names the recording with one whitespace-free token.
        return "".join(line + "\n" for line in ctm_lines("_".join(name.split()) or "utt", result.words))
    raise ValueError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")


def output_name(audio_path: str | Path) -> str:
    """The stem output files of ``audio_path`` are named after (``stdin`` for ``-``)."""
    return "stdin" if str(audio_path) == "-" else Path(audio_path).stem


def write_result(result: Result, audio_path: str | Path, out_dir: str | Path, fmt: str,
                 word_timestamps: bool = False) -> Path:
    """Write ``<out_dir>/<audio stem>.<fmt>`` atomically; return its path."""
    stem = output_name(audio_path)
    path = Path(out_dir) / f"{stem}.{fmt}"
    atomic_write_text(path, format_result(result, fmt, stem, word_timestamps))
    return path
