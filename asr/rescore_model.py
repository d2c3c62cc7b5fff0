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

from asr.audio import header_duration, load_audio, resample
from asr.decode.base import Hypothesis
from asr.file_batches import DEFAULT_CHUNK_LENGTH, FileBatcher
from asr.lm import NgramLM, read_arpa
from asr.rescore import RescoreWeights, Speller, nbest_decoder, score_candidates, union
from asr.rover_model import RoverRecognizer, read_spec
from asr.transcript import Result

log = logging.getLogger(__name__)


def read_rescore(path: str | Path) -> tuple[RescoreWeights, Path | None]:
    """The weights of the rescoring model at ``path`` and its LM file (None: no LM)."""
    spec = read_spec(path)
    weights = RescoreWeights(float(spec["lm_weight"]), float(spec["word_score"]), int(spec["nbest"]))
    return weights, (Path(path) / spec["lm"]) if spec.get("lm") else None


class RescoreRecognizer(FileBatcher, RoverRecognizer):
    """The systems of a rescoring model (each a Recognizer with its own decoder) transcribing
    as one; the interface of a Recognizer that ``transcribe`` uses."""

    def __init__(self, systems: Sequence, path: Path, weights: RescoreWeights,
                 lm: NgramLM | None = None) -> None:
        super().__init__(systems, path)
        self.weights = weights
        self.lm = lm
        self.spellers = [Speller.for_model(s) for s in self.systems]
        self.decoders = [nbest_decoder(s, weights.nbest) for s in self.systems]

    @classmethod
    def load(cls, systems: Sequence, path: Path) -> RescoreRecognizer:
        weights, lm = read_rescore(path)
        return cls(systems, path, weights, read_arpa(lm) if lm is not None else None)

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
        for system, search in zip(self.systems, self.decoders, strict=True):
            audio = self._at_rate(system, signals)
            log_probs, lengths = system.log_probs(list(audio))
            cpu = log_probs.detach().cpu()
            posteriors.append([cpu[i, : int(lengths[i])] for i in range(len(audio))])
            durations = [len(s) / system.sample_rate for s in audio]
            results.append(system.results(log_probs, lengths, durations,
                                          search if search is not None else "greedy"))
        return [self._combined(i, [p[i] for p in posteriors], [r[i] for r in results])
                for i in range(len(signals))]

    def _combined(self, index: int, posteriors: list, results: list[Result]) -> Result:
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

    def transcribe(self, audio, sample_rate: int | None = None, *,
                   chunk_length: float = DEFAULT_CHUNK_LENGTH, batch_size: int = 8, decoder=None,
                   progress: Callable[[float], None] | None = None) -> Result:
        self._own_search(decoder)
        if isinstance(audio, (str, Path)):
            duration = header_duration(audio)
            if duration is None or duration <= chunk_length:
                audio, sample_rate = load_audio(audio, self.sample_rate)[0], self.sample_rate
        if not isinstance(audio, (str, Path)):
            signal = np.asarray(audio, dtype=np.float32)
            if signal.ndim != 1 or signal.size == 0:
                raise ValueError("expected a non-empty 1-D array of samples")
            signal = resample(signal, sample_rate or self.sample_rate, self.sample_rate)
            if len(signal) <= chunk_length * self.sample_rate:
                result = self.transcribe_signals([signal])[0]
                if progress is not None:
                    progress(result.duration)
                return result
            audio, sample_rate = signal, self.sample_rate
        log.info("%s: longer than %g s, transcribed in chunks: its systems' results are "
                 "combined by ROVER voting, not rescored", self.path, chunk_length)
        return RoverRecognizer.transcribe(self, audio, sample_rate, chunk_length=chunk_length,
                                          batch_size=batch_size, progress=progress)
