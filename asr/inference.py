"""Inference: audio in, text with segments and word times out. Used by ``transcribe``,
``asr decode`` and the Python API (``asr.load_model(...).transcribe(...)``).

Short inputs (up to ``chunk_length`` seconds) go through the network in one piece; longer ones
are transcribed in overlapping chunks stitched by time (:mod:`asr.longform`), so memory stays
bounded whatever the length.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from asr import longform
from asr.audio import load_audio
from asr.decode import Decoder, GreedyHypothesis, Hypothesis, build_decoder, greedy_decode
from asr.decode.base import DecoderError
from asr.decode.defaults import build_default_decoder, read_decoding
from asr.decode.forced_align import align_words
from asr.ensemble import combine_log_probs, load_members
from asr.errors import AsrError
from asr.features import CmvnStats, SpeakerCmvn, build_frontend
from asr.file_batches import DEFAULT_CHUNK_LENGTH, FileBatcher
from asr.lm import read_arpa
from asr.modeldir import LoadedModel
from asr.rescore_model import RescoreRecognizer, read_rescore
from asr.rover_model import RoverRecognizer, combination_kind, is_rover, rover_systems
from asr.store import resolve
from asr.transcript import Alternative, Result, Word
from asr.utils import resolve_device

log = logging.getLogger(__name__)


class Recognizer(FileBatcher):
    """A loaded model ready to transcribe: front end, acoustic model, greedy decoder. With
    ``ensemble`` (further models of the same units and frame period, :mod:`asr.ensemble`) each
    model runs on the audio with its own front end and their posteriors are averaged."""

    def __init__(self, loaded: LoadedModel, device: torch.device,
                 ensemble: Sequence[LoadedModel] = ()) -> None:
        self.loaded = loaded
        self.device = device
        self.config = loaded.config
        self.tokenizer = loaded.tokenizer
        self.model = loaded.model.to(device).eval()
        # standalone: with per-speaker CMVN each input is its own speaker until adapt().
        self.frontend = build_frontend(loaded.config.features, standalone=True).to(device)
        self.others = [(build_frontend(m.config.features, standalone=True).to(device),
                        m.model.to(device).eval()) for m in ensemble]
        self.sample_rate = loaded.config.features.sample_rate
        # Seconds per output frame: the feature hop times the model's subsampling.
        self.frame_seconds = self.frontend.hop_length * self.model.subsampling / self.sample_rate
        # None: the built-in greedy path; else the decoder that transcribe_signals uses.
        self.decoder: Decoder | None = None
        self._named: dict[str, Decoder] = {}
        # The model directory's decoding.yaml (asr.decode.defaults), set by load_model.
        self.decoding = None

    @property
    def uses_speaker_cmvn(self) -> bool:
        """True when a model was trained with ``cmvn: speaker`` (see :meth:`adapt`)."""
        return bool(self._speaker_frontends())

    def _speaker_frontends(self) -> list[SpeakerCmvn]:
        frontends = [self.frontend, *(frontend for frontend, _ in self.others)]
        return [f for f in frontends if isinstance(f, SpeakerCmvn)]

    def adapt(self, signals: Iterable[np.ndarray] | None) -> None:
        """Normalise every later input with the CMVN statistics of ``signals``, float32
        waveforms at the model's rate of one speaker (a model trained with ``cmvn: speaker``;
        others ignore it); None: each input is its own speaker again."""
        frontends = self._speaker_frontends()
        stats = self._speaker_stats(frontends, signals) if signals is not None else [None] * len(frontends)
        for frontend, mine in zip(frontends, stats, strict=True):
            frontend.adapt(mine)

    def adapt_files(self, paths: Iterable[str | Path]) -> None:
        """:meth:`adapt` to the audio of ``paths`` (one speaker's recordings), read one file at
        a time; unreadable ones are left out."""
        frontends = self._speaker_frontends()
        if not frontends:
            return
        totals = [CmvnStats(frontend.dim) for frontend in frontends]
        for path in paths:
            try:
                signal, _ = load_audio(path, self.sample_rate)
            except AsrError as exc:  # its own transcription reports it
                log.debug("%s: left out of the speaker's statistics: %s", path, exc)
                continue
            for total, stats in zip(totals, self._speaker_stats(frontends, [signal]), strict=True):
                total.merge(stats)
        for frontend, total in zip(frontends, totals, strict=True):
            frontend.adapt(total)

    def _speaker_stats(self, frontends: list[SpeakerCmvn], signals: Iterable[np.ndarray]) -> list[CmvnStats]:
        # Long signals in pieces of DEFAULT_CHUNK_LENGTH seconds: bounded memory, and the
        # few frames lost at each cut do not move the statistics.
        piece = int(DEFAULT_CHUNK_LENGTH * self.sample_rate)
        pieces = [s[i : i + piece] for s in signals for i in range(0, len(s), piece)]
        return [frontend.speaker_stats(torch.from_numpy(p).to(self.device) for p in pieces)
                for frontend in frontends]

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
        batch, lengths = batch.to(self.device), lengths.to(self.device)
        outputs = [model(*frontend(batch, lengths))
                   for frontend, model in [(self.frontend, self.model), *self.others]]
        return combine_log_probs(outputs)

    def _words(self, hyp: GreedyHypothesis, posteriors: torch.Tensor) -> list[Word]:
        words: list[Word] = []
        if not hyp.tokens:
            return words
        # One gather for every token (an .item() per token dominates on long recordings).
        token_post = posteriors[torch.tensor(hyp.frames), torch.tensor(hyp.tokens)].tolist()
        for group in self.tokenizer.word_groups(hyp.tokens):
            tokens = [hyp.tokens[p] for p in group]
            frames = [hyp.frames[p] for p in group]
            conf = float(np.mean([token_post[p] for p in group]))
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
            labels = [span.word for span in spans]
            if best.words is not None:
                # A lexicon search knows its words; the spans are their spellings in the
                # model's units (a phone model's "R AH B AW T" is RUBOUT).
                labels = list(best.words) if len(best.words) == len(spans) else []
                if not labels:
                    log.debug("%d words but %d aligned spans: no word times", len(best.words), len(spans))
            for label, span in zip(labels, spans, strict=False):
                words.append(Word(label, round(span.start * self.frame_seconds, 3),
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
            posteriors = log_probs[i].detach().cpu().exp()
            results.append(
                Result(
                    self.tokenizer.decode(hyp.tokens),
                    durations[i],
                    self._words(hyp, posteriors),
                )
            )
        return results

    def _transcribe_long(self, audio: str | Path | np.ndarray, *, chunk_length: float,
                         batch_size: int, decoder: Decoder | str | None,
                         progress: Callable[[float], None] | None) -> Result:
        """A file or array (at the model's rate) longer than ``chunk_length`` seconds: in
        overlapping chunks stitched by time, a file read block by block (:mod:`asr.longform`)."""
        transcribe = longform.transcribe_file if isinstance(audio, (str, Path)) else longform.transcribe_array
        return transcribe(self, audio, chunk_length=chunk_length, batch_size=batch_size,
                          decoder=decoder, progress=progress)


def load_model(name_or_path: str | Path | None = None, device: str = "auto",
               model_decoder: bool = True) -> Recognizer | RoverRecognizer:
    """Resolve (``--model``, ``$ASR_MODEL``, the store's default) and load a model. With
    ``model_decoder`` the model's own decoder (``decoding.yaml``: lexicon, LM, weights) is built
    now, so that a missing or mismatched file fails here, and becomes the default search. A
    combination model (:mod:`asr.rover_model`) loads as a :class:`RoverRecognizer` of its
    systems, each with its own decoder, or for n-best rescoring a :class:`RescoreRecognizer`."""
    torch_device = resolve_device(device)
    path = resolve(str(name_or_path) if name_or_path is not None else None)
    if is_rover(path):
        if not model_decoder:
            raise AsrError(f"{path} is a ROVER model: each of its systems decodes with its own "
                           f"search; drop the search options, or give one system (--model "
                           f"{path / 'system-2'}, ...)")
        if combination_kind(path) == "rescore":
            weights, lm = read_rescore(path)
            # Each system's own search keeps the n-best list the rescoring needs.
            systems = [_load_one(system, torch_device, True, weights.nbest)
                       for system in rover_systems(path)]
            return RescoreRecognizer(systems, path, weights, read_arpa(lm) if lm else None)
        return RoverRecognizer([_load_one(system, torch_device, True) for system in rover_systems(path)], path)
    return _load_one(path, torch_device, model_decoder)


def load_system(path: str | Path, device: str = "auto", nbest: int = 1) -> Recognizer:
    """One model directory with its own decoder keeping ``nbest`` hypotheses, even where it is
    system 1 of a combination model (whose root is that system's directory)."""
    return _load_one(Path(path), resolve_device(device), True, nbest)


def _load_one(path: Path, torch_device: torch.device, model_decoder: bool,
              nbest: int = 1) -> Recognizer:
    """The model directory ``path`` (one model or an ensemble) with its decoder (see
    :func:`load_model`), keeping ``nbest`` hypotheses (its beam widened to ``nbest`` when
    narrower)."""
    first, *others = load_members(path, torch_device)
    recognizer = Recognizer(first, torch_device, others)
    if model_decoder:
        recognizer.decoding = read_decoding(path)
    else:
        # Another search was chosen: the model's defaults still fill in what it leaves open,
        # but files that went missing do not matter unless it asks for them.
        try:
            recognizer.decoding = read_decoding(path)
        except DecoderError as exc:
            log.warning("%s; decoding without the model's decoder", exc)
    if model_decoder and recognizer.decoding is not None:
        values = recognizer.decoding
        if nbest > values.beam_size:
            values = dataclasses.replace(values, beam_size=nbest)
        recognizer.use_decoder(build_default_decoder(path, values, recognizer.tokenizer, nbest=nbest))
    return recognizer
