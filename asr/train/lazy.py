"""Training examples that hold no audio: an utterance's ``wav.scp`` entry (or segment), its
duration from ``utt2dur``, its frame count and its token ids.

:func:`load_lazy` screens a data dir from metadata alone, so its memory does not grow with the
audio and every data-parallel rank takes the same skip decisions from the same files: empty
transcripts, durations over the limit, and labels longer than CTC can align in the frames the
duration gives. The audio is read per batch by :class:`asr.train.reader.BatchReader` (in
DataLoader workers). A data dir without ``utt2dur`` gets one, computed from the audio headers
(rank 0 writes it, the others wait and read it); a file whose header cannot be read is counted
as unreadable (``--max-bad-utts``), as when the audio itself is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from asr.config import FeatureConfig
from asr.data.datadir import DataDir
from asr.data.dataset import SkipReport, ctc_min_frames
from asr.data.tables import format_float, write_kaldi_map
from asr.data.utterance import Utterance
from asr.data.wav_audio import entry_duration
from asr.data.wavscp import pipes_allowed
from asr.errors import AudioError, DataDirError
from asr.features import build_frontend
from asr.text import Tokenizer
from asr.train import ddp

log = logging.getLogger(__name__)


@dataclass
class LazyExample:
    """One training utterance by reference: its audio is read when its batch is made."""

    utt_id: str
    utterance: Utterance  # wav.scp entry (and segment) to read
    tokens: torch.Tensor  # (label_len,) int64
    text: str
    speaker: str
    duration: float  # seconds
    num_frames: int  # feature frames of the unperturbed audio


def _measure(utt: Utterance, allow_pipes: bool) -> float | None:
    """Seconds of one utterance from its segment or its audio header (None: needs a command
    that is not allowed). Raises :class:`AudioError` for a file that cannot be read."""
    if utt.segment is not None and utt.segment.end != -1:
        return utt.segment.end - utt.segment.start
    seconds = entry_duration(utt.wav, allow_pipes)
    if seconds is None or utt.segment is None:
        return seconds
    return seconds - utt.segment.start


def _measure_all(data: DataDir) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """Seconds per utterance from segments and headers, and the (utt_id, error) of those whose
    audio cannot be opened."""
    allow_pipes = pipes_allowed(None)
    seconds: dict[str, float] = {}
    unreadable: list[tuple[str, str]] = []
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


def utterance_seconds(data: DataDir, report: SkipReport, max_bad_utts: int | None,
                      dist: ddp.DistInfo | None = None) -> dict[str, float]:
    """Seconds per utterance of ``data``: its ``utt2dur``, else measured from the headers (by
    rank 0, shared with the other ranks) and written to ``utt2dur`` (logged). Utterances whose
    audio cannot be opened are counted in ``report`` on every rank and left out; then no
    ``utt2dur`` is written."""
    dist = dist or ddp.DistInfo()
    path = data.path / "utt2dur"
    measured = None
    if dist.is_main and not path.is_file():
        measured = _measure_all(data)
        seconds, unreadable = measured
        if not unreadable:
            try:
                write_kaldi_map(path, {u: format_float(round(s, 6)) for u, s in seconds.items()})
                log.info("%s: no utt2dur; computed it from the audio headers and wrote %s", data.path, path)
            except OSError as exc:
                log.info("%s: no utt2dur; computed it from the audio headers (not written: %s)", data.path, exc)
    if dist.enabled:  # rank 0's decision and numbers, so that every rank keeps the same
        measured = ddp.all_gather(measured, dist)[0]
    if measured is None:
        return _read_utt2dur(data)
    seconds, unreadable = measured
    for utt_id, error in unreadable:
        report.add_unreadable(utt_id, error, str(data.path), max_bad_utts)
    return seconds


def _read_utt2dur(data: DataDir) -> dict[str, float]:
    from asr.data.tables import read_kaldi_map

    path = data.path / "utt2dur"
    seconds = {}
    for utt, value in read_kaldi_map(path).items():
        try:
            seconds[utt] = float(value)
        except ValueError:
            raise DataDirError(f"{path}: '{utt}': '{value}' is not a duration in seconds; "
                               "delete the file to have it computed again") from None
    return seconds


def load_lazy(
    data: DataDir,
    features: FeatureConfig,
    tokenizer: Tokenizer,
    subsampling: int = 1,
    max_duration_s: float | None = None,
    require_text: bool = True,
    max_bad_utts: int | None = None,
    dist: ddp.DistInfo | None = None,
) -> tuple[list[LazyExample], SkipReport]:
    """The utterances of ``data`` as :class:`LazyExample` s, screened from metadata (see the
    module docstring). Skips are counted in the report as :func:`load_waveforms` counts them."""
    report = SkipReport()
    seconds = utterance_seconds(data, report, max_bad_utts, dist)
    unreadable = {utt for utt, _ in report.unreadable}
    extractor = build_frontend(features)  # only its frame count is used here
    examples: list[LazyExample] = []
    for utt in data.utterances:
        if utt.utt_id in unreadable:
            continue
        if require_text and not utt.text.strip():
            report.add("empty transcript", utt.utt_id)
            continue
        if utt.utt_id not in seconds:
            report.add("no entry in utt2dur", utt.utt_id)
            continue
        duration = seconds[utt.utt_id]
        if max_duration_s is not None and duration > max_duration_s:
            report.add(f"longer than {max_duration_s:g} s", utt.utt_id)
            continue
        samples = round(duration * features.sample_rate)
        frames = int(extractor.num_frames(torch.tensor(samples)))
        tokens = tokenizer.encode(utt.text)
        if require_text and -(-frames // subsampling) < ctc_min_frames(tokens):
            report.add("too short for its transcript", utt.utt_id)
            continue
        examples.append(LazyExample(utt.utt_id, utt, torch.tensor(tokens, dtype=torch.long),
                                    utt.text, utt.speaker, duration, frames))
    return examples, report
