"""Training examples that hold no audio: an utterance's ``wav.scp`` entry (or segment), its
duration from ``utt2dur``, its frame count and its token ids.

:func:`load_lazy` screens a data dir from metadata alone, so its memory does not grow with the
audio and every data-parallel rank takes the same skip decisions from the same files: empty
transcripts, durations over the limit, and labels longer than CTC can align in the frames the
duration gives. The audio is read per batch by :class:`asr.train.reader.BatchReader` (in
DataLoader workers). A data dir without ``utt2dur`` gets one, measured from the audio headers
and written (rank 0 measures, the other ranks use its numbers); a file whose header cannot be
read is counted as unreadable (``--max-bad-utts``), as when the audio itself is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from asr.config import FeatureConfig
from asr.data.datadir import DataDir
from asr.data.dataset import SkipReport, too_short_for_ctc
from asr.data.durations import durations_or_measure
from asr.data.utterance import Utterance
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


def utterance_seconds(data: DataDir, report: SkipReport, max_bad_utts: int | None,
                      dist: ddp.DistInfo | None = None) -> dict[str, float]:
    """Seconds per utterance of ``data`` (:func:`asr.data.durations.durations_or_measure`:
    its ``utt2dur``, else measured from the headers and written), found by rank 0 and shared
    with the other ranks. Utterances whose audio cannot be opened are counted in ``report`` on
    every rank (up to ``max_bad_utts``) and left out."""
    dist = dist or ddp.DistInfo()
    found = durations_or_measure(data) if dist.is_main else None
    if dist.enabled:  # rank 0's numbers, so that every rank keeps the same utterances
        found = ddp.all_gather(found, dist)[0]
    assert found is not None
    seconds, unreadable = found
    for utt_id, error in unreadable:
        report.add_unreadable(utt_id, error, str(data.path), max_bad_utts)
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
        if require_text and too_short_for_ctc(frames, subsampling, tokens):
            report.add("too short for its transcript", utt.utt_id)
            continue
        examples.append(LazyExample(utt.utt_id, utt, torch.tensor(tokens, dtype=torch.long),
                                    utt.text, utt.speaker, duration, frames))
    return examples, report
