"""Kaldi data directories: ``wav.scp``, ``segments``, ``text``, ``utt2spk``, ``spk2utt``.

Files are UTF-8, one ``<id> <value>`` per line (fields separated by spaces or tabs, as Kaldi's
tools split them), sorted in C-locale (byte) order as Kaldi's ``utils/validate_data_dir.sh``
requires. :func:`scan_kaldi_file` reports every problem of a file with its line;
:func:`read_kaldi_map` stops at the first one that makes the file unreadable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from asr.errors import DataDirError
from asr.utils import atomic_write_text

PIPES_ENV = "ASR_ALLOW_PIPES"

# Problems that make a file unreadable (the rest are reported by validation only).
FATAL_KINDS = frozenset({"utf8", "crlf", "blank", "duplicate", "no-value", "id-space"})

# Whitespace other than space and tab: Kaldi's field splitting does not treat it as a
# separator, so inside an id or a transcript it silently makes a different token.
_ODD_SPACE = re.compile(r"[^\S \t]")
_FIELDS = re.compile(r"[ \t]*([^ \t]+)(?:[ \t]+(.*))?")


@dataclass(frozen=True)
class Segment:
    """One utterance cut from a recording: ``segments`` holds ``<utt> <reco> <start> <end>``
    in seconds; ``end == -1`` means the end of the recording (accepted by Kaldi's
    ``extract-segments``, rejected by its ``validate_data_dir.sh``)."""

    recording: str
    start: float
    end: float


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    # The wav.scp entry of the audio: a path, ``file.ark:offset`` or a command ending in ``|``.
    # With a segment, it is the entry of the whole recording.
    wav: str
    text: str
    speaker: str
    segment: Segment | None = None


@dataclass(frozen=True)
class Problem:
    """One problem of a data directory, located by file and (when it has one) line."""

    path: Path
    line: int | None
    message: str
    kind: str = "other"
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"


@dataclass(frozen=True)
class Line:
    lineno: int
    key: str
    value: str


def c_sort_key(key: str) -> bytes:
    """Kaldi sorts with ``LC_ALL=C``: by UTF-8 bytes."""
    return key.encode("utf-8")


def pipes_allowed(allow: bool | None = None) -> bool:
    """Whether ``wav.scp`` commands (``cmd |``) may run: ``allow`` when given, else the
    environment variable ``ASR_ALLOW_PIPES`` (1/true/yes)."""
    if allow is not None:
        return allow
    return os.environ.get(PIPES_ENV, "").strip().lower() in ("1", "true", "yes")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataDirError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataDirError(f"{path}: is a directory, not a Kaldi file") from None
    except OSError as exc:
        raise DataDirError(f"{path}: cannot read ({exc.strerror})") from None


def scan_kaldi_file(
    path: str | Path, allow_empty_value: bool = False
) -> tuple[list[Line], list[Problem]]:
    """Every usable line of ``path`` and every problem found, each with its line number.

    Lines that cannot be used (not UTF-8, blank, duplicate id, no value) are reported and left
    out; CRLF endings are reported and stripped; out-of-order ids are reported and kept.
    """
    path = Path(path)
    raw = _read_bytes(path)
    chunks = raw.split(b"\n")
    problems: list[Problem] = []
    if chunks[-1] == b"":
        chunks.pop()
    else:
        problems.append(
            Problem(path, len(chunks), "no newline at the end of the file", "no-final-newline")
        )
    lines: list[Line] = []
    first_seen: dict[str, int] = {}
    for lineno, chunk in enumerate(chunks, 1):
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(
                Problem(path, lineno, f"not valid UTF-8 (byte {exc.start}); re-encode the file "
                        "as UTF-8 (iconv)", "utf8")
            )
            continue
        if text.endswith("\r"):
            problems.append(
                Problem(path, lineno, "CRLF line ending; convert the file with dos2unix", "crlf")
            )
            text = text.rstrip("\r")
        match = _FIELDS.fullmatch(text)
        if match is None:
            problems.append(Problem(path, lineno, "blank line", "blank"))
            continue
        if text[0] in " \t":
            problems.append(
                Problem(path, lineno, "line starts with whitespace", "leading-space", "warning")
            )
        key, value = match[1], (match[2] or "").rstrip(" \t")
        odd = _ODD_SPACE.search(key)
        if odd:
            problems.append(
                Problem(path, lineno, f"id {key!r} holds a whitespace character "
                        f"(U+{ord(odd[0]):04X}); ids may not contain spaces", "id-space")
            )
            continue
        if not value and not allow_empty_value:
            problems.append(Problem(path, lineno, f"'{key}' has no value", "no-value"))
            continue
        if key in first_seen:
            problems.append(
                Problem(path, lineno, f"duplicate id '{key}' (first on line {first_seen[key]})",
                        "duplicate")
            )
            continue
        if lines and c_sort_key(key) < c_sort_key(lines[-1].key):
            problems.append(
                Problem(path, lineno, f"'{key}' is out of order (after '{lines[-1].key}' on line "
                        f"{lines[-1].lineno}); sort with LC_ALL=C sort -k1,1", "unsorted")
            )
        first_seen[key] = lineno
        lines.append(Line(lineno, key, value))
    return lines, problems


def read_kaldi_lines(path: str | Path, allow_empty_value: bool = False) -> list[Line]:
    """The lines of ``path``; the first problem that makes it unreadable is a DataDirError."""
    lines, problems = scan_kaldi_file(path, allow_empty_value)
    for problem in problems:
        if problem.kind in FATAL_KINDS:
            raise DataDirError(str(problem))
    return lines


def read_kaldi_map(path: str | Path, allow_empty_value: bool = False) -> dict[str, str]:
    """Read ``<id> <value...>`` lines into an ordered dict; errors name the file and line."""
    return {line.key: line.value for line in read_kaldi_lines(path, allow_empty_value)}


def write_kaldi_map(path: str | Path, entries: dict[str, str] | Iterable[tuple[str, str]]) -> None:
    """Write ``<id> <value>`` lines sorted in C-locale order, atomically."""
    items = entries.items() if isinstance(entries, dict) else entries
    lines = sorted(items, key=lambda kv: c_sort_key(kv[0]))
    for key, value in lines:
        if not key or any(ch.isspace() for ch in key):
            raise DataDirError(f"{path}: invalid id {key!r} (ids may not be empty or hold spaces)")
        if "\n" in value or "\r" in value:
            raise DataDirError(f"{path}: the value of '{key}' holds a line break")
    keys = [key for key, _ in lines]
    if len(set(keys)) != len(keys):
        dup = next(k for k, n in zip(keys, keys[1:], strict=False) if k == n)
        raise DataDirError(f"{path}: duplicate id '{dup}'")
    atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in lines))


@dataclass
class DataDir:
    path: Path
    utterances: list[Utterance]

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances}, key=c_sort_key)


def _read_recordings(path: Path, allow_pipes: bool | None) -> dict[str, str]:
    """wav.scp with plain paths made absolute; commands refused unless pipes are allowed."""
    from asr.data.wavscp import needs_shell, parse_wav_entry, resolve_paths

    scp = path / "wav.scp"
    recordings: dict[str, str] = {}
    for line in read_kaldi_lines(scp):
        entry = parse_wav_entry(line.value)
        if needs_shell(entry) and not pipes_allowed(allow_pipes):
            raise DataDirError(
                f"{scp}:{line.lineno}: '{line.key}' is read through a shell command "
                f"('{line.value}'); commands run only when allowed: pass --allow-pipes or set "
                f"{PIPES_ENV}=1"
            )
        recordings[line.key] = resolve_paths(entry, Path.cwd())
    return recordings


def read_data_dir(
    path: str | Path, require_text: bool = True, allow_pipes: bool | None = None
) -> DataDir:
    """Read ``wav.scp`` (+ ``segments``, ``text``, ``utt2spk`` when present).

    Utterances without audio, or (when ``require_text``) without a transcript, are errors naming
    the utterance. Relative paths are resolved against the current directory, as Kaldi does.
    Commands in ``wav.scp`` are refused unless ``allow_pipes`` (or ``ASR_ALLOW_PIPES=1``);
    Kaldi's own speed-perturbation lines (``sox ... speed F |``) are read in process and need
    no permission.
    """
    from asr.data.files import read_file

    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"{path}: data directory not found")
    recordings = _read_recordings(path, allow_pipes)
    segments: dict[str, Segment] | None = None
    if (path / "segments").exists():
        segments = read_file(path / "segments")
        lines = {line.key: line.lineno for line in read_kaldi_lines(path / "segments")}
        for utt_id, seg in segments.items():
            if seg.recording not in recordings:
                raise DataDirError(
                    f"{path / 'segments'}:{lines[utt_id]}: recording '{seg.recording}' of "
                    f"utterance '{utt_id}' is not in wav.scp; run `asr data fix {path}`"
                )
        utt_ids = list(segments)
    else:
        utt_ids = list(recordings)
    texts: dict[str, str] = {}
    if (path / "text").exists():
        texts = read_kaldi_map(path / "text", allow_empty_value=True)
        known = set(utt_ids)
        missing = [u for u in texts if u not in known]
        if missing:
            where = "segments" if segments is not None else "wav.scp"
            raise DataDirError(
                f"{path / 'text'}: {len(missing)} utterance(s) have no entry in {where}, "
                f"first '{missing[0]}'; run `asr data fix {path}` to drop them"
            )
    elif require_text:
        raise DataDirError(f"{path}: no 'text' file (transcripts are needed here)")
    utt2spk = read_file(path / "utt2spk") if (path / "utt2spk").exists() else {}
    utterances = []
    for utt_id in utt_ids:
        if require_text and utt_id not in texts:
            raise DataDirError(f"{path / 'text'}: no transcript for utterance '{utt_id}'")
        seg = segments[utt_id] if segments is not None else None
        wav = recordings[seg.recording] if seg is not None else recordings[utt_id]
        speaker = utt2spk.get(utt_id, utt_id)
        utterances.append(Utterance(utt_id, wav, texts.get(utt_id, ""), speaker, seg))
    utterances.sort(key=lambda u: c_sort_key(u.utt_id))
    return DataDir(path, utterances)


def write_data_dir(path: str | Path, utterances: Iterable[Utterance]) -> DataDir:
    """Write ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt`` (and ``segments`` when the
    utterances are cut from recordings) for ``utterances``."""
    from asr.data.files import utt2spk_to_spk2utt, write_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    utts = sorted(utterances, key=lambda u: c_sort_key(u.utt_id))
    ids = [u.utt_id for u in utts]
    if len(set(ids)) != len(ids):
        raise DataDirError(f"{path}: duplicate utterance ids")
    for utt in utts:
        # Kaldi requires speaker ids to be prefixes of utterance ids so that sorting agrees.
        if not utt.utt_id.startswith(utt.speaker):
            raise DataDirError(
                f"{path}: utterance id '{utt.utt_id}' does not start with its speaker id "
                f"'{utt.speaker}'"
            )
    with_segments = [u for u in utts if u.segment is not None]
    if with_segments and len(with_segments) != len(utts):
        raise DataDirError(
            f"{path}: some utterances have segments and others not; give every utterance a "
            "segment (start 0, end the recording's duration for whole recordings)"
        )
    if with_segments:
        recordings: dict[str, str] = {}
        for utt in utts:
            assert utt.segment is not None
            previous = recordings.setdefault(utt.segment.recording, utt.wav)
            if previous != utt.wav:
                raise DataDirError(
                    f"{path}: recording '{utt.segment.recording}' has two audio entries "
                    f"('{previous}' and '{utt.wav}')"
                )
        write_kaldi_map(path / "wav.scp", recordings)
        write_file(path / "segments", {u.utt_id: u.segment for u in utts})
    else:
        (path / "segments").unlink(missing_ok=True)
        write_kaldi_map(path / "wav.scp", [(u.utt_id, u.wav) for u in utts])
    write_kaldi_map(path / "text", [(u.utt_id, u.text) for u in utts])
    utt2spk = {u.utt_id: u.speaker for u in utts}
    write_kaldi_map(path / "utt2spk", utt2spk)
    write_file(path / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    return DataDir(path, utts)
