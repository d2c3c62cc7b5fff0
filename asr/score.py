"""Word and character error rates, reported as Kaldi's ``compute-wer`` does.

The implementation lives in :mod:`asr.scoring`; this module keeps the historical import path
(``from asr.score import score, ErrorCounts, ScoreReport``).
"""

from asr.scoring import ErrorCounts, ScoreReport, ScoringError, char_errors, score, word_errors

__all__ = ["ErrorCounts", "ScoreReport", "ScoringError", "char_errors", "score", "word_errors"]
