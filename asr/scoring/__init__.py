"""Scoring: WER/CER/SER that agree with NIST sclite, Kaldi-style reports, bootstrap intervals.

``score(refs, hyps, utt2spk)`` aligns every pair with sclite's costs and tie-breaking
(:mod:`asr.scoring.edit_distance`), after an explicit normalisation (:mod:`asr.scoring.normalize`),
and returns a :class:`ScoreReport`.
"""

from asr.scoring.bootstrap import (
    BootstrapInterval,
    PairedComparison,
    bootstrap_interval,
    paired_bootstrap,
)
from asr.scoring.counts import ErrorCounts
from asr.scoring.normalize import NORMALIZATIONS, normalize_words
from asr.scoring.readers import FORMATS, ScoringError, read_transcripts
from asr.scoring.report import ScoreReport
from asr.scoring.scorer import char_errors, score, word_errors

__all__ = [
    "FORMATS",
    "NORMALIZATIONS",
    "BootstrapInterval",
    "ErrorCounts",
    "PairedComparison",
    "ScoreReport",
    "ScoringError",
    "bootstrap_interval",
    "char_errors",
    "normalize_words",
    "paired_bootstrap",
    "read_transcripts",
    "score",
    "word_errors",
]
