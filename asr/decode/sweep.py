"""Search a data directory's posteriors many times: n-best lists, and the LM weight / word
score sweep that Kaldi's ``score.sh`` runs over ``lmwt`` and ``wip``.

The acoustic model runs once (:func:`compute_posteriors`); each grid point is only a search
(:func:`search`) and a scoring, written as ``wer_<lm_weight>_<word_score>``; ``best_wer``
names the lowest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from asr.data.datadir import DataDir
from asr.decode.base import Decoder, DecoderError
from asr.decode.decode_dir import length_batches, read_signals
from asr.scoring import ScoreReport, score
from asr.utils import atomic_write_text

if TYPE_CHECKING:
    from asr.inference import Recognizer
    from asr.transcript import Result

log = logging.getLogger("asr.decode")


@dataclass
class Posteriors:
    """The acoustic model's output for every readable utterance of a data directory."""

    data: DataDir
    log_probs: dict[str, torch.Tensor]  # utt id -> (time, vocab), on the CPU
    durations: dict[str, float]  # seconds of audio
    unreadable: list[str] = field(default_factory=list)
    forward_seconds: float = 0.0  # features + network

    @property
    def audio_seconds(self) -> float:
        return sum(self.durations.values())

    @property
    def refs(self) -> dict[str, str]:
        return self.data.refs(self.log_probs)

    @property
    def utt2spk(self) -> dict[str, str]:
        return self.data.utt2spk


def compute_posteriors(recognizer: Recognizer, data: DataDir | str | Path, batch_size: int = 32,
                       max_bad_utts: int = 0) -> Posteriors:
    """Read every utterance and run the model in batches of similar length (speaker by
    speaker for a model trained with per-speaker CMVN, as :func:`decode_data_dir` does)."""
    data, signals, bad = read_signals(data, recognizer.sample_rate, max_bad_utts)
    log_probs: dict[str, torch.Tensor] = {}
    start = time.perf_counter()
    for ids in length_batches(recognizer, data, signals, batch_size):
        out, lengths = recognizer.log_probs([signals[u] for u in ids])
        out = out.detach().cpu()
        for j, utt_id in enumerate(ids):
            log_probs[utt_id] = out[j, : int(lengths[j])].clone()
    elapsed = time.perf_counter() - start
    durations = {u: len(s) / recognizer.sample_rate for u, s in signals.items()}
    return Posteriors(data, log_probs, durations, bad, elapsed)


def search(recognizer: Recognizer, posteriors: Posteriors, decoder: Decoder | None,
           batch_size: int = 512) -> tuple[dict[str, Result], float]:
    """Results of every utterance with ``decoder`` (None: greedy), and the seconds the search
    took. Utterances are padded into batches of similar length."""
    order = sorted(posteriors.log_probs, key=lambda u: posteriors.log_probs[u].shape[0])
    results: dict[str, Result] = {}
    elapsed = 0.0
    for i in range(0, len(order), batch_size):
        ids = order[i : i + batch_size]
        parts = [posteriors.log_probs[u] for u in ids]
        lengths = torch.tensor([p.shape[0] for p in parts], dtype=torch.long)
        batch = torch.zeros(len(parts), int(lengths.max()) if len(parts) else 0, parts[0].shape[1])
        for j, part in enumerate(parts):
            batch[j, : part.shape[0]] = part
        start = time.perf_counter()
        out = recognizer.results(batch, lengths, [posteriors.durations[u] for u in ids],
                                 decoder if decoder is not None else "greedy")
        elapsed += time.perf_counter() - start
        results.update(zip(ids, out, strict=True))
    return results, elapsed


def grid_name(lm_weight: float, word_score: float) -> str:
    """``wer_<lm_weight>_<word_score>`` file names, as Kaldi's score.sh writes them."""
    return f"wer_{lm_weight:g}_{word_score:g}"


@dataclass
class SweepPoint:
    lm_weight: float
    word_score: float
    report: ScoreReport
    path: Path


def sweep(recognizer: Recognizer, posteriors: Posteriors,
          make_decoder: Callable[[float, float], Decoder], lm_weights: Sequence[float],
          word_scores: Sequence[float], out_dir: str | Path) -> tuple[SweepPoint, list[SweepPoint]]:
    """Decode and score ``posteriors`` at every (lm_weight, word_score); write
    ``out_dir/wer_<lmwt>_<wip>`` for each and ``out_dir/best_wer``; return the best point
    (lowest WER, then fewest errors of any kind; ties keep the first in grid order)."""

    def hyps_at(lm_weight: float, word_score: float) -> dict[str, str]:
        results, _ = search(recognizer, posteriors, make_decoder(lm_weight, word_score))
        return {u: r.text for u, r in results.items()}

    return sweep_grid(posteriors.refs, posteriors.utt2spk, hyps_at, lm_weights, word_scores,
                      out_dir, posteriors.data.path)


def sweep_grid(refs: dict[str, str], utt2spk: dict[str, str],
               hyps_at: Callable[[float, float], dict[str, str]], lm_weights: Sequence[float],
               word_scores: Sequence[float], out_dir: str | Path,
               source: str | Path = "the data") -> tuple[SweepPoint, list[SweepPoint]]:
    """Score ``hyps_at(lm_weight, word_score)`` against ``refs`` at every point of the grid
    (the search itself is the caller's: a decoder, or n-best rescoring); files and the choice
    of the best as :func:`sweep`. ``source`` names the data in the error for missing refs."""
    if not refs:
        raise DecoderError(f"{source}: a weight sweep needs reference transcripts "
                           "(a `text` file); give --tune-data with a scored dev set")
    out_dir = Path(out_dir)
    points: list[SweepPoint] = []
    for lm_weight in lm_weights:
        for word_score in word_scores:
            report = score(refs, hyps_at(lm_weight, word_score), utt2spk)
            path = out_dir / grid_name(lm_weight, word_score)
            atomic_write_text(path, "\n".join(report.lines()) + "\n")
            log.info("lm weight %g, word score %g: %s", lm_weight, word_score, report.lines()[0])
            points.append(SweepPoint(lm_weight, word_score, report, path))
    best = min(points, key=lambda p: (p.report.wer.rate, p.report.cer.rate))
    atomic_write_text(out_dir / "best_wer", f"{best.report.lines()[0]} {best.path}\n")
    return best, points
