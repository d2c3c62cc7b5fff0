"""Training examples as waveforms, for features computed on the fly on the training device.

:func:`load_waveforms` applies the same filters as :func:`asr.data.dataset.load_examples` (and
reports what it skips in the same way); the features themselves are computed per batch by the
configured front-end (``asr.features.build_frontend``) on the training device, so a GPU does
the front-end work and no feature cache is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from asr.config import FeatureConfig
from asr.data.batching import Batch, collate
from asr.data.datadir import DataDir
from asr.data.dataset import Example, SkipReport, audio_reader, screen_utterances, too_short_for_ctc
from asr.features import build_frontend
from asr.text import Tokenizer
from asr.train.lazy import LazyExample

log = logging.getLogger(__name__)


@dataclass
class WaveExample:
    utt_id: str
    samples: torch.Tensor  # (num_samples,) float32 at the feature sample rate
    tokens: torch.Tensor  # (label_len,) int64
    text: str
    speaker: str
    duration: float  # seconds
    num_frames: int  # feature frames the front-end will produce


AnyExample = Example | WaveExample | LazyExample
AnyBatch = Batch  # one batch type for features and waveforms


def num_frames(example: AnyExample) -> int:
    """Feature frames of an example, precomputed or not."""
    if isinstance(example, Example):
        return int(example.feats.shape[0])
    return example.num_frames


def collate_waves(examples: Sequence[WaveExample]) -> Batch:
    lengths = torch.tensor([len(e.samples) for e in examples], dtype=torch.long)
    waves = torch.zeros(len(examples), int(lengths.max()))
    for i, example in enumerate(examples):
        waves[i, : len(example.samples)] = example.samples
    return Batch(
        [e.utt_id for e in examples],
        waves,
        lengths,
        torch.cat([e.tokens for e in examples]),
        torch.tensor([len(e.tokens) for e in examples], dtype=torch.long),
    )


def make_batch(examples: Sequence[AnyExample]) -> Batch:
    """Pad a list of examples of one kind (features or waveforms) into a batch."""
    if isinstance(examples[0], WaveExample):
        return collate_waves(examples)  # type: ignore[arg-type]
    return collate(examples)  # type: ignore[arg-type]


def load_waveforms(
    data: DataDir,
    features: FeatureConfig,
    tokenizer: Tokenizer,
    subsampling: int = 1,
    max_duration_s: float | None = None,
    require_text: bool = True,
    progress: bool = False,
    max_bad_utts: int | None = None,
) -> tuple[list[WaveExample], SkipReport]:
    """Decode every utterance of ``data`` at the feature sample rate and keep the waveform.

    Skipped (counted, never silent): unreadable audio, empty transcripts (when
    ``require_text``), utterances longer than ``max_duration_s``, and utterances whose
    (subsampled) frame count is below what CTC needs for their labels. More than
    ``max_bad_utts`` unreadable utterances (``None``: no limit) raise
    :class:`~asr.errors.DataDirError`.
    """
    sample_rate = features.sample_rate
    extractor = build_frontend(features)  # only its frame count is used here
    examples: list[WaveExample] = []
    report = SkipReport()
    read = audio_reader(data, sample_rate, report, max_bad_utts)
    for utt, samples, duration in screen_utterances(data, read, report, max_duration_s,
                                                    require_text, "audio", progress):
        frames = int(extractor.num_frames(torch.tensor(len(samples))))
        tokens = tokenizer.encode(utt.text)
        if require_text and too_short_for_ctc(frames, subsampling, tokens):
            report.add("too short for its transcript", utt.utt_id)
            continue
        examples.append(
            WaveExample(
                utt.utt_id,
                torch.from_numpy(samples),
                torch.tensor(tokens, dtype=torch.long),
                utt.text,
                utt.speaker,
                duration,
                frames,
            )
        )
    return examples, report
