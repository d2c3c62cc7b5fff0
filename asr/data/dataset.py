"""Utterances from a data directory turned into feature/label tensors, with a counted report of
everything skipped and why."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from asr.data.datadir import DataDir
from asr.data.utterance import Utterance
from asr.data.wav_audio import load_utterance_audio
from asr.errors import AudioError, DataDirError
from asr.features.dump import read_feats_scp, speaker_normalise
from asr.text import Tokenizer

log = logging.getLogger(__name__)

Loaded = TypeVar("Loaded")


@dataclass
class Example:
    utt_id: str
    feats: torch.Tensor  # (time, n_mels) float32
    tokens: torch.Tensor  # (label_len,) int64
    text: str
    speaker: str
    duration: float  # seconds


UNREADABLE = "unreadable audio"


@dataclass
class SkipReport:
    """Counts of skipped utterances by reason, with the first few ids of each, and every
    utterance whose audio could not be read (with the error), checked against a limit."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (utt_id, error)

    def add(self, reason: str, utt_id: str) -> None:
        self.counts[reason] += 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 5:
            self.examples[reason].append(utt_id)

    def add_unreadable(self, utt_id: str, error: str, where: str, max_bad_utts: int | None) -> None:
        """Count an utterance whose audio failed to load; more than ``max_bad_utts`` of them
        (``None``: no limit) stops the run with a :class:`DataDirError` naming ``where``."""
        log.warning("utterance %s: %s (skipped)", utt_id, error)
        self.add(UNREADABLE, utt_id)
        self.unreadable.append((utt_id, error))
        if max_bad_utts is not None and max_bad_utts >= 0 and len(self.unreadable) > max_bad_utts:
            first = self.unreadable[0][0]
            raise DataDirError(
                f"{where}: {len(self.unreadable)} utterance(s) with unreadable audio (first "
                f"'{first}'), more than --max-bad-utts {max_bad_utts}; fix or drop them "
                "(asr data fix) or raise --max-bad-utts"
            )

    def unreadable_list(self) -> str:
        """``<utt-id> <error>`` per unreadable utterance, one a line."""
        return "".join(f"{utt} {error}\n" for utt, error in self.unreadable)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def log(self, name: str) -> None:
        for reason, count in sorted(self.counts.items()):
            ids = ", ".join(self.examples[reason])
            log.warning("%s: skipped %d utterance(s): %s (e.g. %s)", name, count, reason, ids)


def ctc_min_frames(tokens: list[int]) -> int:
    """Frames CTC needs for a label sequence: one per label, plus a blank between repeats."""
    repeats = sum(1 for a, b in itertools.pairwise(tokens) if a == b)
    return len(tokens) + repeats


def too_short_for_ctc(frames: int, subsampling: int, tokens: list[int]) -> bool:
    """Whether ``frames`` input frames, ``subsampling``-fold subsampled, are fewer than CTC
    needs for ``tokens`` (:func:`ctc_min_frames`)."""
    return -(-frames // subsampling) < ctc_min_frames(tokens)


def audio_reader(data: DataDir, sample_rate: int, report: SkipReport, max_bad_utts: int | None
                 ) -> Callable[[Utterance], tuple[np.ndarray, float] | None]:
    """``read`` for :func:`screen_utterances`: an utterance's samples at ``sample_rate`` and its
    duration, or None (counted as unreadable in ``report``, up to ``max_bad_utts``)."""

    def read(utt: Utterance) -> tuple[np.ndarray, float] | None:
        try:
            samples = load_utterance_audio(utt, sample_rate)  # segments, arks, pipes
        except AudioError as exc:
            report.add_unreadable(utt.utt_id, str(exc), str(data.path), max_bad_utts)
            return None
        return samples, len(samples) / sample_rate

    return read


def screen_utterances(
    data: DataDir,
    read: Callable[[Utterance], tuple[Loaded, float] | None],
    report: SkipReport,
    max_duration_s: float | None,
    require_text: bool,
    desc: str,
    progress: bool = False,
) -> Iterator[tuple[Utterance, Loaded, float]]:
    """``(utterance, what read gave, duration in s)`` for each utterance of ``data`` that passes
    the checks every loader shares, in order. Counted in ``report`` and skipped: an empty
    transcript (when ``require_text``), what ``read`` refuses (it counts its own reason), a
    duration over ``max_duration_s``."""
    from tqdm import tqdm

    for utt in tqdm(data.utterances, desc=f"{desc} {data.path.name}", disable=not progress):
        if require_text and not utt.text.strip():
            report.add("empty transcript", utt.utt_id)
            continue
        loaded = read(utt)
        if loaded is None:
            continue
        payload, duration = loaded
        if max_duration_s is not None and duration > max_duration_s:
            report.add(f"longer than {max_duration_s:g} s", utt.utt_id)
            continue
        yield utt, payload, duration


@torch.no_grad()
def load_examples(
    data: DataDir,
    frontend: nn.Module,
    tokenizer: Tokenizer,
    subsampling: int = 1,
    max_duration_s: float | None = None,
    require_text: bool = True,
    progress: bool = False,
    max_bad_utts: int | None = None,
) -> tuple[list[Example], SkipReport]:
    """Featurise every utterance of ``data`` with ``frontend`` (see
    :func:`asr.features.build_frontend`), on the device its buffers are on.

    With ``features.source: feats.scp`` the features are read from the data dir's dumped
    ``feats.scp`` (``asr data compute-features``) instead; the dump must have been made with
    the same feature settings. With ``features.cmvn: speaker`` each utterance is normalised
    with the statistics of its speaker over the kept utterances of ``data``.

    Skipped (counted, never silent): unreadable audio (or no entry in feats.scp), empty
    transcripts (when ``require_text``), utterances longer than ``max_duration_s``, and
    utterances whose (subsampled) frame count is below what CTC needs for their labels. More
    than ``max_bad_utts`` utterances with missing, corrupt or unreadable audio (``None``: no
    limit) raise :class:`~asr.errors.DataDirError`.
    """
    config = frontend.config
    sample_rate = config.sample_rate
    device = next(iter(frontend.buffers()), torch.zeros(0)).device
    examples: list[Example] = []
    report = SkipReport()
    read: Callable[[Utterance], tuple[object, float] | None]
    if config.source == "feats.scp":
        dumped = read_feats_scp(data.path, config)

        def read(utt: Utterance) -> tuple[torch.Tensor, float] | None:
            if utt.utt_id not in dumped:
                report.add("no entry in feats.scp", utt.utt_id)
                return None
            feats = torch.from_numpy(np.array(dumped[utt.utt_id], dtype=np.float32))
            return feats, feats.shape[0] * frontend.hop_length / sample_rate

    else:
        read = audio_reader(data, sample_rate, report, max_bad_utts)

    for utt, loaded, duration in screen_utterances(data, read, report, max_duration_s, require_text,
                                                   "features", progress):
        if isinstance(loaded, torch.Tensor):
            feats = loaded
        else:  # samples: featurised only once the utterance passed the checks
            batch, _ = frontend(torch.from_numpy(loaded).to(device))
            feats = batch[0].cpu()
        tokens = tokenizer.encode(utt.text)
        if require_text and too_short_for_ctc(feats.shape[0], subsampling, tokens):
            report.add("too short for its transcript", utt.utt_id)
            continue
        examples.append(
            Example(
                utt.utt_id,
                feats,
                torch.tensor(tokens, dtype=torch.long),
                utt.text,
                utt.speaker,
                duration,
            )
        )
    if config.cmvn == "speaker" and examples:
        normalised = speaker_normalise(
            {e.utt_id: e.feats for e in examples}, {e.utt_id: e.speaker for e in examples}
        )
        for example in examples:
            example.feats = normalised[example.utt_id]
    return examples, report
