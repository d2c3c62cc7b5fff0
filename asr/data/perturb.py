"""Kaldi's ``perturb_data_dir_speed.sh``: a data directory played faster or slower (the signal
operation itself is :func:`asr.audio.speed_perturb`)."""

from __future__ import annotations

import logging
import math

from asr.data.datafiles import DataFiles
from asr.data.durations import known_durations, recording_durations
from asr.data.files import parse_segment
from asr.data.tables import format_float
from asr.data.wavscp import WavSpeed, format_wav_entry, parse_wav_entry
from asr.errors import DataDirError

log = logging.getLogger(__name__)

# Files whose values stay valid after perturbation only with their ids renamed.
_RENAMED_ONLY = ("text", "utt2spk", "spk2gender", "utt2lang", "reco2file_and_channel")


def perturb_speed(data: DataFiles, factor_text: str, allow_pipes: bool = False) -> DataFiles:
    """The data directory played ``factor`` times faster, as Kaldi's perturb_data_dir_speed.sh
    writes it: ids prefixed ``sp<factor>-`` (utterances, speakers, recordings), wav.scp entries
    wrapped in ``sox ... speed <factor> |``, segment times and durations divided by the factor,
    and utt2uniq pointing at the original utterances. Features, CMVN and frame counts are not
    carried over (they no longer match the audio)."""
    try:
        factor = float(factor_text)
    except ValueError:
        raise DataDirError(f"speed factor '{factor_text}' is not a number") from None
    if not math.isfinite(factor) or factor <= 0:
        raise DataDirError(f"speed factor '{factor_text}' must be a positive number")
    if "wav.scp" not in data.files:
        raise DataDirError(f"{data.source}: no wav.scp to perturb")
    prefix = f"sp{factor_text}-"
    durations = known_durations(data, allow_pipes)

    files: dict[str, dict[str, str]] = {}
    for name in _RENAMED_ONLY:
        if name in data.files:
            files[name] = dict(data.files[name])
    files["wav.scp"] = {
        reco: format_wav_entry(WavSpeed(parse_wav_entry(value), factor))
        for reco, value in data.files["wav.scp"].items()
    }
    files["utt2dur"] = {u: format_float(round(d / factor, 6)) for u, d in durations.items()}
    # Kaldi writes reco2dur too (recordings are utterances when there are no segments).
    recordings = recording_durations(data, allow_pipes) if data.has_segments else durations
    files["reco2dur"] = {r: format_float(round(d / factor, 6)) for r, d in recordings.items()}
    if "utt2uniq" in data.files:
        files["utt2uniq"] = dict(data.files["utt2uniq"])
    else:
        files["utt2uniq"] = {u: u for u in data.utterances}
    if data.has_segments:
        segments = {}
        for utt, value in data.files["segments"].items():
            seg = parse_segment(value)
            start = seg.start / factor
            end = seg.end / factor if seg.end != -1 else -1.0
            if end != -1 and end <= start + 0.01:
                log.warning("%s: dropped (shorter than 10 ms after perturbation)", utt)
                continue
            segments[utt] = f"{seg.recording} {start:.2f} {end:.2f}" if end != -1 else (
                f"{seg.recording} {start:.2f} -1"
            )
        files["segments"] = segments
    dropped = sorted(set(data.files) - set(files))
    perturbed = DataFiles(files, data.source)
    if data.has_segments:
        perturbed = perturbed.select(segments)
    perturbed = perturbed.rename(
        utt=lambda u: prefix + u, spk=lambda s: prefix + s, reco=lambda r: prefix + r
    )
    perturbed.notes = [f"{n}: not carried over (no longer matches the audio)" for n in dropped]
    return perturbed
