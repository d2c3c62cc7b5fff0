"""Durations of recordings and utterances (``reco2dur``, ``utt2dur``), from audio headers where
there are headers (as Kaldi's ``utils/data/get_utt2dur.sh``)."""

from __future__ import annotations

import logging
from pathlib import Path

from asr.data.datadir import DataDir
from asr.data.datafiles import DataFiles
from asr.data.files import parse_segment
from asr.data.tables import format_float, read_kaldi_map, write_kaldi_map
from asr.data.utterance import Utterance
from asr.data.wav_audio import entry_duration
from asr.data.wavscp import pipes_allowed
from asr.errors import AudioError, DataDirError

log = logging.getLogger(__name__)


def recording_durations(data: DataFiles, allow_pipes: bool = False) -> dict[str, float]:
    """Seconds per ``wav.scp`` entry: reco2dur when present, else the audio itself. An entry
    that needs a command that is not allowed is an error saying how to allow it."""
    if "reco2dur" in data.files:
        return {k: float(v) for k, v in data.files["reco2dur"].items()}
    scp = data.files.get("wav.scp")
    if scp is None:
        raise DataDirError(f"{data.source}: no wav.scp, so no durations")
    durations: dict[str, float] = {}
    for reco, value in scp.items():
        try:
            seconds = entry_duration(value, allow_pipes)
        except AudioError as exc:
            raise DataDirError(f"{data.source}/wav.scp: '{reco}': {exc}") from None
        if seconds is None:
            raise DataDirError(
                f"{data.source}/wav.scp: '{reco}' is read through a command; its duration needs "
                "running it: pass --allow-pipes or set ASR_ALLOW_PIPES=1"
            )
        durations[reco] = seconds
    return durations


def utterance_durations(data: DataFiles, allow_pipes: bool = False) -> dict[str, float]:
    """Seconds per utterance: segment lengths (``end -1`` resolved against the recording),
    else the recording durations."""
    if not data.has_segments:
        return recording_durations(data, allow_pipes)
    segments = {u: parse_segment(v) for u, v in data.files["segments"].items()}
    recordings: dict[str, float] | None = None
    durations = {}
    for utt, seg in segments.items():
        end = seg.end
        if end == -1:
            if recordings is None:
                recordings = recording_durations(data, allow_pipes)
            end = recordings[seg.recording]
        durations[utt] = end - seg.start
    return durations


def known_durations(data: DataFiles, allow_pipes: bool = False) -> dict[str, float]:
    """Seconds per utterance: ``utt2dur`` when present, else :func:`utterance_durations`."""
    if "utt2dur" in data.files:
        return {k: float(v) for k, v in data.files["utt2dur"].items()}
    return utterance_durations(data, allow_pipes)


def get_durations(path: str | Path, allow_pipes: bool = False) -> dict[str, Path]:
    """Write ``utt2dur`` (and ``reco2dur`` when there are segments) into the data dir."""
    path = Path(path)
    data = DataFiles.load(path)
    written = {}
    if data.has_segments:
        recos = recording_durations(data, allow_pipes)
        write_kaldi_map(path / "reco2dur", {k: format_float(v) for k, v in recos.items()})
        written["reco2dur"] = path / "reco2dur"
        data.files["reco2dur"] = {k: format_float(v) for k, v in recos.items()}
    utts = utterance_durations(data, allow_pipes)
    write_kaldi_map(path / "utt2dur", {k: format_float(round(v, 6)) for k, v in utts.items()})
    written["utt2dur"] = path / "utt2dur"
    return written


Unreadable = tuple[str, str]  # (utt_id, error)


def _measure(utt: Utterance, allow_pipes: bool) -> float | None:
    """Seconds of one utterance from its segment or its audio header (None: needs a command
    that is not allowed). Raises :class:`AudioError` for a file that cannot be read."""
    if utt.segment is not None and utt.segment.end != -1:
        return utt.segment.end - utt.segment.start
    seconds = entry_duration(utt.wav, allow_pipes)
    if seconds is None or utt.segment is None:
        return seconds
    return seconds - utt.segment.start


def measure_utterances(data: DataDir) -> tuple[dict[str, float], list[Unreadable]]:
    """Seconds per utterance from segments and headers, and the (utt_id, error) of those whose
    audio cannot be opened; an entry read through a command that is not allowed is an error."""
    allow_pipes = pipes_allowed(None)
    seconds: dict[str, float] = {}
    unreadable: list[Unreadable] = []
    for utt in data.utterances:
        try:
            measured = _measure(utt, allow_pipes)
        except AudioError as exc:
            unreadable.append((utt.utt_id, str(exc)))
            continue
        if measured is None:
            raise DataDirError(
                f"{data.path}/wav.scp: '{utt.utt_id}' is read through a command, so its "
                "duration needs running it: write utt2dur first (asr data get-durations "
                "--allow-pipes), or set train.preload: true"
            )
        seconds[utt.utt_id] = measured
    return seconds, unreadable


def read_utt2dur(path: Path) -> dict[str, float]:
    """``utt2dur`` as seconds per utterance; a value that is not a number names the line."""
    seconds = {}
    for utt, value in read_kaldi_map(path).items():
        try:
            seconds[utt] = float(value)
        except ValueError:
            raise DataDirError(f"{path}: '{utt}': '{value}' is not a duration in seconds; "
                               "delete the file to have it computed again") from None
    return seconds


def durations_or_measure(data: DataDir) -> tuple[dict[str, float], list[Unreadable]]:
    """Seconds per utterance of a data dir: its ``utt2dur``, else measured from the headers
    (:func:`measure_utterances`) and written to ``utt2dur`` when every utterance could be
    measured (logged; a read-only data dir only loses the cache). Returns the seconds and the
    unreadable utterances."""
    path = data.path / "utt2dur"
    if path.is_file():
        return read_utt2dur(path), []
    seconds, unreadable = measure_utterances(data)
    if unreadable:
        log.info("%s: no utt2dur; measured the audio headers (%d unreadable, so none written)",
                 data.path, len(unreadable))
        return seconds, unreadable
    try:
        write_kaldi_map(path, {u: format_float(round(s, 6)) for u, s in seconds.items()})
        log.info("%s: no utt2dur; computed it from the audio headers and wrote %s", data.path, path)
    except OSError as exc:
        log.info("%s: no utt2dur; computed it from the audio headers (not written: %s)", data.path, exc)
    return seconds, unreadable
