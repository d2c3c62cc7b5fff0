"""Inference: audio in, text with word times out. Used by ``transcribe`` and ``asr decode``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from asr.audio import load_audio, resample
from asr.decode import Decoder, GreedyHypothesis, Hypothesis, build_decoder, greedy_decode
from asr.decode.align import align_words
from asr.decode.base import DecoderError
from asr.features import build_frontend
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
class Alternative:
    """One entry of an n-best list; scores are natural logs (see asr.decode.Hypothesis)."""

    text: str
    score: float
    am_score: float
    lm_score: float


@dataclass
class Result:
    text: str
    duration: float  # seconds of audio
    words: list[Word] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)  # n-best, when asked for

    def to_dict(self) -> dict:
        data = asdict(self)
        if not self.alternatives:
            del data["alternatives"]
        return data


class Recognizer:
    """A loaded model ready to transcribe: front end, acoustic model, greedy decoder."""

    def __init__(self, loaded: LoadedModel, device: torch.device) -> None:
        self.loaded = loaded
        self.device = device
        self.config = loaded.config
        self.tokenizer = loaded.tokenizer
        self.model = loaded.model.to(device).eval()
        # standalone: with per-speaker CMVN each input is its own speaker.
        self.frontend = build_frontend(loaded.config.features, standalone=True).to(device)
        self.sample_rate = loaded.config.features.sample_rate
        # Seconds per output frame: the feature hop times the model's subsampling.
        self.frame_seconds = self.frontend.hop_length * self.model.subsampling / self.sample_rate
        # None: the built-in greedy path; else the decoder that transcribe_signals uses.
        self.decoder: Decoder | None = None
        self._named: dict[str, Decoder] = {}

    def use_decoder(self, decoder: Decoder | str | None) -> None:
        """Decode with ``decoder`` from now on (a :class:`~asr.decode.Decoder`, a name of
        ``asr.decode.DECODERS`` with default options, or None for greedy search)."""
        self.decoder = self._resolve(decoder)

    def _resolve(self, decoder: Decoder | str | None) -> Decoder | None:
        if decoder is None or decoder == "greedy":
            return None
        if isinstance(decoder, str):
            if decoder not in self._named:
                self._named[decoder] = build_decoder(decoder, self.tokenizer)
            return self._named[decoder]
        return decoder

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

    def _searched(self, hyps: list[Hypothesis], log_probs: torch.Tensor, duration: float,
                  nbest: int = 1) -> Result:
        """A decoder's n-best list for one utterance (``(time, vocab)`` log-probs) as a Result:
        the best hypothesis, word times from its forced alignment, the alternatives."""
        if not hyps:
            return Result("", duration)
        best = hyps[0]
        words: list[Word] = []
        if best.tokens:
            try:
                spans = align_words(log_probs, best.tokens, self.tokenizer)
            except DecoderError:
                spans = []  # unalignable (cannot happen for a hypothesis of these frames)
            for span in spans:
                words.append(Word(span.word, round(span.start * self.frame_seconds, 3),
                                  round(span.end * self.frame_seconds, 3), round(span.confidence, 4)))
        alternatives = []
        if nbest > 1:
            alternatives = [Alternative(self._text(h), round(h.score, 4), round(h.am_score, 4),
                                        round(h.lm_score, 4)) for h in hyps]
        return Result(self._text(best), duration, words, alternatives)

    def _text(self, hyp: Hypothesis) -> str:
        if hyp.words is not None:
            return " ".join(hyp.words)
        return self.tokenizer.decode(hyp.tokens)

    def results(self, log_probs: torch.Tensor, lengths: torch.Tensor, durations: list[float],
                decoder: Decoder | str | None = None) -> list[Result]:
        """Search ``(batch, time, vocab)`` log-probs with ``decoder`` (default: the one set by
        :meth:`use_decoder`, else greedy search); ``durations`` in seconds, per utterance."""
        chosen = self._resolve(decoder) if decoder is not None else self.decoder
        if chosen is None:
            return self._greedy_results(log_probs, lengths, durations)
        out = []
        cpu = log_probs.detach().cpu()
        for i, hyps in enumerate(chosen.decode(log_probs, lengths)):
            out.append(self._searched(hyps, cpu[i, : int(lengths[i])], durations[i], chosen.nbest))
        return out

    def transcribe_signals(self, signals: list[np.ndarray], decoder: Decoder | str | None = None) -> list[Result]:
        """Transcribe float32 waveforms at the model's rate with ``decoder`` (see
        :meth:`results`)."""
        log_probs, lengths = self.log_probs(signals)
        return self.results(log_probs, lengths, [len(s) / self.sample_rate for s in signals], decoder)

    def _greedy_results(self, log_probs: torch.Tensor, lengths: torch.Tensor, durations: list[float]) -> list[Result]:
        results = []
        for i, hyp in enumerate(greedy_decode(log_probs, lengths)):
            posteriors = log_probs[i].exp().cpu()
            results.append(
                Result(
                    self.tokenizer.decode(hyp.tokens),
                    durations[i],
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
