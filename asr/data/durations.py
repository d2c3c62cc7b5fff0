"""Durations of recordings and utterances (``reco2dur``, ``utt2dur``), from audio headers where
there are headers (as Kaldi's ``utils/data/get_utt2dur.sh``)."""

from __future__ import annotations

from pathlib import Path

from asr.data.datafiles import DataFiles
from asr.data.files import parse_segment
from asr.data.tables import format_float, write_kaldi_map
from asr.data.wav_audio import entry_duration
from asr.errors import AudioError, DataDirError


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
