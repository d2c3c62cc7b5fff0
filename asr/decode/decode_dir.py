"""Decode a whole Kaldi data directory: the loop shared by ``asr decode`` and
``asr benchmark``.

Audio is read first (unreadable utterances are skipped, logged and counted), then decoded in
batches of similar length; for a model trained with per-speaker CMVN, speaker by speaker, each
normalised with the statistics of its speaker's utterances (``utt2spk``). Only the
recognizer's work is timed (features, network, search, detokenisation), not reading the
audio, so the real-time factor describes the model.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from asr.data.datadir import DataDir, read_data_dir
from asr.data.wav_audio import load_utterance_audio
from asr.decode.registry import DECODERS
from asr.errors import AsrError, AudioError

if TYPE_CHECKING:
    import numpy as np

    from asr.decode import Decoder
    from asr.inference import Recognizer

log = logging.getLogger("asr.decode")

GREEDY = "greedy"


def available_decoders() -> list[str]:
    """Decoder names :func:`decode_data_dir` accepts (``asr.decode.DECODERS``)."""
    return list(DECODERS)


@dataclass
class DataDirDecode:
    """Hypotheses of one data directory and what decoding them cost."""

    data: DataDir
    hyps: dict[str, str]
    words: dict[str, list[dict]]  # per utterance: Word fields (word, start, end, confidence)
    unreadable: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0  # of the decoded utterances
    elapsed: float = 0.0  # seconds spent in the recognizer
    device: str = "cpu"
    decoder: str = GREEDY  # the decoder's name

    @property
    def rtf(self) -> float:
        """Real-time factor: recognizer seconds per second of audio (lower is faster)."""
        return self.elapsed / self.audio_seconds if self.audio_seconds else 0.0

    @property
    def utts_per_second(self) -> float:
        return len(self.hyps) / self.elapsed if self.elapsed else 0.0

    @property
    def refs(self) -> dict[str, str]:
        """Reference transcripts; empty when the data directory has no ``text``."""
        return self.data.refs()

    @property
    def utt2spk(self) -> dict[str, str]:
        return self.data.utt2spk


def _transcriber(recognizer: Recognizer, decoder: str | Decoder) -> Callable:
    if decoder == GREEDY:
        # The recognizer's own path (greedy unless the caller chose another with use_decoder).
        return recognizer.transcribe_signals
    if "decoder" in inspect.signature(recognizer.transcribe_signals).parameters:
        return functools.partial(recognizer.transcribe_signals, decoder=decoder)
    raise AsrError(f"decoder '{decoder}' is not available in this build; use --decoder {GREEDY}")


def decode_data_dir(
    recognizer: Recognizer,
    data: DataDir | str | Path,
    batch_size: int = 32,
    max_bad_utts: int = 0,
    decoder: str | Decoder = GREEDY,
) -> DataDirDecode:
    """Transcribe every utterance of ``data`` (a directory or an already read
    :class:`~asr.data.datadir.DataDir`) with ``recognizer`` and ``decoder`` (a name of
    :func:`available_decoders`, built with its default options, or a built
    :class:`~asr.decode.Decoder`).

    Unreadable utterances (missing, corrupt or failing audio) are skipped, logged one by one
    and listed at the end; more than ``max_bad_utts`` of them (``-1``: no limit) is an error
    naming the first one.
    """
    if batch_size < 1:
        raise AsrError(f"batch size {batch_size}: give 1 or more utterances per forward pass")
    transcribe = _transcriber(recognizer, decoder)
    data, signals, bad = read_signals(data, recognizer.sample_rate, max_bad_utts)
    hyps: dict[str, str] = {}
    words: dict[str, list[dict]] = {}
    audio_seconds = sum(len(s) for s in signals.values()) / recognizer.sample_rate
    start = time.perf_counter()
    for ids in length_batches(recognizer, data, signals, batch_size):
        for utt_id, result in zip(ids, transcribe([signals[u] for u in ids]), strict=True):
            hyps[utt_id] = result.text
            words[utt_id] = [w.__dict__ for w in result.words]
    elapsed = time.perf_counter() - start
    run = DataDirDecode(
        data, hyps, words, bad, audio_seconds, elapsed, str(recognizer.device), str(decoder)
    )
    log.info("decoded %d utterances (%.1f s of audio) in %.1f s on %s: RTF %.4f",
             len(hyps), audio_seconds, elapsed, recognizer.device, run.rtf)
    return run


def length_batches(recognizer: Recognizer, data: DataDir, signals: dict[str, np.ndarray],
                   batch_size: int) -> Iterator[list[str]]:
    """The utterance ids of ``signals`` in batches of similar length (little compute wasted on
    padding). For a model trained with per-speaker CMVN, speaker by speaker: the recognizer
    normalises with the statistics of the speaker whose batches are being yielded, and each
    input on its own again at the end."""
    by_speaker = getattr(recognizer, "uses_speaker_cmvn", False)
    try:
        for utts in speaker_groups(data, signals) if by_speaker else [list(signals)]:
            if by_speaker:
                recognizer.adapt([signals[u] for u in utts])
            order = sorted(utts, key=lambda u: len(signals[u]))
            for i in range(0, len(order), batch_size):
                yield order[i : i + batch_size]
    finally:
        if by_speaker:
            recognizer.adapt(None)


def speaker_groups(data: DataDir, signals: dict[str, np.ndarray]) -> list[list[str]]:
    """The utterances of ``signals`` grouped by speaker (``utt2spk``), in data dir order."""
    groups: dict[str, list[str]] = {}
    for utt in data.utterances:
        if utt.utt_id in signals:
            groups.setdefault(utt.speaker, []).append(utt.utt_id)
    return list(groups.values())


def read_signals(data: DataDir | str | Path, sample_rate: int, max_bad_utts: int = 0
                 ) -> tuple[DataDir, dict[str, np.ndarray], list[str]]:
    """Every utterance's samples at ``sample_rate`` (segments, arks and opt-in pipes resolved).

    Unreadable utterances are logged and returned in a list; more than ``max_bad_utts`` of them
    (-1: no limit) raise :class:`AsrError` naming the first.
    """
    if not isinstance(data, DataDir):
        data = read_data_dir(data, require_text=False)
    signals: dict[str, np.ndarray] = {}
    bad: list[str] = []
    for utt in data.utterances:
        try:
            signals[utt.utt_id] = load_utterance_audio(utt, sample_rate)
        except AudioError as exc:
            log.warning("utterance %s: %s", utt.utt_id, exc)
            bad.append(utt.utt_id)
    if len(bad) > max_bad_utts >= 0:
        raise AsrError(
            f"{data.path}: {len(bad)} unreadable utterance(s) (first '{bad[0]}'), "
            f"more than --max-bad-utts {max_bad_utts}; fix or drop them (asr data fix) or raise "
            "--max-bad-utts"
        )
    if bad:
        log.warning("%s: skipped %d unreadable utterance(s) (at most %s allowed): %s", data.path,
                    len(bad), "any" if max_bad_utts < 0 else max_bad_utts, " ".join(bad))
    return data, signals, bad
