"""Inference: audio in, text with word times out. Used by ``transcribe`` and ``asr decode``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from asr.audio import load_audio, resample
from asr.decode import GreedyHypothesis, greedy_decode
from asr.features import LogMel
from asr.modeldir import LoadedModel, load_model_dir
from asr.store import resolve
from asr.utils import resolve_device


@dataclass
class Word:
    word: str
    start: float  # seconds
    end: float
    confidence: float  # mean best-path posterior of the word's tokens


@dataclass
class Result:
    text: str
    duration: float  # seconds of audio
    words: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Recognizer:
    """A loaded model ready to transcribe: front end, acoustic model, greedy decoder."""

    def __init__(self, loaded: LoadedModel, device: torch.device) -> None:
        self.loaded = loaded
        self.device = device
        self.config = loaded.config
        self.tokenizer = loaded.tokenizer
        self.model = loaded.model.to(device).eval()
        self.frontend = LogMel(loaded.config.features).to(device)
        self.sample_rate = loaded.config.features.sample_rate
        # Seconds per output frame: the feature hop times the model's subsampling.
        self.frame_seconds = self.frontend.hop_length * self.model.subsampling / self.sample_rate

    @torch.no_grad()
    def log_probs(self, signals: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """``len(signals)`` float32 waveforms at the model's rate -> ``(batch, time', vocab)``."""
        lengths = torch.tensor([len(s) for s in signals], dtype=torch.long)
        batch = torch.zeros(len(signals), int(lengths.max()))
        for i, signal in enumerate(signals):
            batch[i, : len(signal)] = torch.from_numpy(signal)
        feats, feat_lengths = self.frontend(batch.to(self.device), lengths.to(self.device))
        return self.model(feats, feat_lengths)

    def _words(self, hyp: GreedyHypothesis, posteriors: torch.Tensor) -> list[Word]:
        words: list[Word] = []
        for group in self.tokenizer.word_groups(hyp.tokens):
            tokens = [hyp.tokens[p] for p in group]
            frames = [hyp.frames[p] for p in group]
            conf = float(np.mean([posteriors[f, t].item() for t, f in zip(tokens, frames, strict=True)]))
            start = frames[0] * self.frame_seconds
            end = (frames[-1] + 1) * self.frame_seconds
            words.append(Word(self.tokenizer.decode(tokens), round(start, 3), round(end, 3), round(conf, 4)))
        return words

    def transcribe_signals(self, signals: list[np.ndarray]) -> list[Result]:
        log_probs, lengths = self.log_probs(signals)
        results = []
        for i, hyp in enumerate(greedy_decode(log_probs, lengths)):
            posteriors = log_probs[i].exp().cpu()
            results.append(
                Result(
                    self.tokenizer.decode(hyp.tokens),
                    len(signals[i]) / self.sample_rate,
                    self._words(hyp, posteriors),
                )
            )
        return results

    def transcribe(self, audio: str | Path | np.ndarray, sample_rate: int | None = None) -> Result:
        """Transcribe a file path, or a 1-D float array at ``sample_rate`` (default: the model's)."""
        if isinstance(audio, (str, Path)):
            signal, _ = load_audio(audio, self.sample_rate)
        else:
            signal = np.asarray(audio, dtype=np.float32)
            if signal.ndim != 1 or signal.size == 0:
                raise ValueError("expected a non-empty 1-D array of samples")
            signal = resample(signal, sample_rate or self.sample_rate, self.sample_rate)
        return self.transcribe_signals([signal])[0]


def load_model(name_or_path: str | Path | None = None, device: str = "auto") -> Recognizer:
    """Resolve (``--model``, ``$ASR_MODEL``, the store's default) and load a model."""
    torch_device = resolve_device(device)
    path = resolve(str(name_or_path) if name_or_path is not None else None)
    return Recognizer(load_model_dir(path, torch_device), torch_device)
