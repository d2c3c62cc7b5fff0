"""An n-best rescoring model (``combine: rescore`` in ``rover.yaml``, :mod:`asr.rover_model`)
run as one recognizer: every system searches the audio with its own decoder for an n-best list,
and the union of the lists is rescored by all systems and the LM (:mod:`asr.rescore`).

The combined words take their times and confidences from the first system whose best
hypothesis is the chosen one, else from the first system's forced alignment of it.
Recordings longer than ``chunk_length`` are transcribed by each system in chunks
(:mod:`asr.longform`); chunk-stitched searches keep no n-best list, so those are combined by
ROVER voting of the systems' results instead (logged), as a ``combine: rover`` model would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from asr.decode.base import Hypothesis
from asr.file_batches import FileBatcher
from asr.lm import NgramLM
from asr.rescore import RescoreWeights, Speller, score_candidates, union
from asr.rover_model import RoverRecognizer, read_spec
from asr.transcript import Result

log = logging.getLogger(__name__)


def read_rescore(path: str | Path) -> tuple[RescoreWeights, Path | None]:
    """The weights of the rescoring model at ``path`` and its LM file (None: no LM)."""
    spec = read_spec(path)
    weights = RescoreWeights(float(spec["lm_weight"]), float(spec["word_score"]), int(spec["nbest"]))
    return weights, (Path(path) / spec["lm"]) if spec.get("lm") else None


class RescoreRecognizer(FileBatcher, RoverRecognizer):
    """The systems of a rescoring model (each a Recognizer whose own decoder keeps
    ``weights.nbest`` hypotheses) transcribing as one; the interface of a Recognizer that
    ``transcribe`` uses."""

    def __init__(self, systems: Sequence, path: Path, weights: RescoreWeights,
                 lm: NgramLM | None = None) -> None:
        super().__init__(systems, path)
        self.weights = weights
        self.lm = lm
        self.spellers = [Speller.for_model(s) for s in self.systems]

    def __repr__(self) -> str:
        w = self.weights
        return (f"n-best rescoring of {len(self.systems)} systems ({self.path}; {w.nbest}-best, "
                f"LM weight {w.lm_weight:g}, word score {w.word_score:g})")

    def transcribe_signals(self, signals: list[np.ndarray], decoder=None) -> list[Result]:
        """Float32 waveforms at system 1's sample rate (resampled for any system of another)."""
        self._own_search(decoder)
        if not signals:
            return []
        posteriors, results = [], []
        for system in self.systems:
            audio = self._at_rate(system, signals)
            log_probs, lengths = system.log_probs(list(audio))
            cpu = log_probs.detach().cpu()
            posteriors.append([cpu[i, : int(lengths[i])] for i in range(len(audio))])
            durations = [len(s) / system.sample_rate for s in audio]
            # The system's own search, loaded keeping the n-best list (asr.inference.load_model).
            results.append(system.results(log_probs, lengths, durations))
        return [self._combined([p[i] for p in posteriors], [r[i] for r in results])
                for i in range(len(signals))]

    def _combined(self, posteriors: list, results: list[Result]) -> Result:
        """One utterance: its systems' ``(time, vocab)`` posteriors and n-best results."""
        texts = union([[a.text for a in r.alternatives] or [r.text] for r in results])
        candidates = score_candidates(texts, posteriors, self.spellers, self.lm)
        best = candidates.best(self.weights.lm_weight, self.weights.word_score)
        text = candidates.texts[best]
        duration = results[0].duration
        for result in results:
            if " ".join(result.text.split()) == text:
                return Result(text, duration, list(result.words))
        for m, system in enumerate(self.systems):
            tokens = candidates.targets[m][best]
            if tokens or not text:
                hyp = Hypothesis(tokens, float(candidates.am[m, best]), float(candidates.am[m, best]),
                                 words=text.split())
                return Result(text, duration, system._searched([hyp], posteriors[m], duration).words)
        return Result(text, duration)

    def _transcribe_long(self, audio, *, chunk_length: float, batch_size: int, decoder,
                         progress: Callable[[float], None] | None) -> Result:
        log.info("%s: longer than %g s, transcribed in chunks: its systems' results are "
                 "combined by ROVER voting, not rescored", self.path, chunk_length)
        return RoverRecognizer.transcribe(self, audio, self.sample_rate, chunk_length=chunk_length,
                                          batch_size=batch_size, decoder=decoder, progress=progress)
