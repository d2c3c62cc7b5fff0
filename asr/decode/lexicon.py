"""Lexicon-constrained beam search with a word n-gram LM: flashlight-text's decoder through
``torchaudio.models.decoder.ctc_decoder``.

Only words of the lexicon can be produced; each is spelled in the model's character tokens and
ends with ``<space>``, the word boundary (flashlight's "silence" token). The LM is an ARPA file
or a KenLM binary (``asr lm build --binary``) over the same words; without one, words are
scored by ``word_score`` alone.

A CTC model emits ``<space>`` between words, not after the last one, so flashlight would never
finish an utterance's last spelling: its end-of-utterance step keeps only hypotheses whose
last word is complete, and those have dropped the last word (or are empty). Each utterance
therefore gets one extra frame in which the boundary is certain (log-probability 0, every
other token impossible): the end of the audio is a word boundary, and no path's acoustic score
changes.

``lm_weight`` multiplies the natural-log LM probability, as in the prefix beam search (the
value handed to flashlight, whose KenLM scores are log10, is ``lm_weight * ln 10``), so one
sweep grid serves both decoders.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import torch

from asr.decode.base import Decoder, DecoderError, Hypothesis
from asr.decode.forced_align import best_path_log_prob
from asr.text.tokenizer import BLANK, SPACE, UNK, Tokenizer
from asr.utils import atomic_write_text, native_stderr_silenced

# A log-probability no path takes, finite so that flashlight's sums stay finite.
IMPOSSIBLE = -1.0e4


def spell(word: str) -> list[str]:
    """A word's lexicon spelling in character tokens, ending with the word boundary."""
    return [*word, SPACE]


def write_lexicon(path: str | Path, words: Iterable[str]) -> Path:
    """``word w o r d <space>`` per line, one line per distinct word, sorted."""
    lines = [f"{w} {' '.join(spell(w))}\n" for w in sorted(set(words)) if not w.startswith("<")]
    atomic_write_text(path, "".join(lines))
    return Path(path)


def read_lexicon(path: str | Path, tokenizer: Tokenizer) -> dict[str, list[list[str]]]:
    """Words and their spellings (several lines may give one word several); every token must
    be one of the model's."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DecoderError(f"{path}: lexicon not found (asr lm lexicon writes one)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DecoderError(f"{path}: cannot read the lexicon ({exc})") from None
    lexicon: dict[str, list[list[str]]] = {}
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise DecoderError(f"{path}:{lineno}: expected 'word token token ...', got {line!r}")
        unknown = [t for t in fields[1:] if t not in tokenizer.index or t == BLANK]
        if unknown:
            raise DecoderError(f"{path}:{lineno}: token {unknown[0]!r} of {fields[0]!r} is not "
                               "one of the model's tokens (tokens.txt)")
        lexicon.setdefault(fields[0], []).append(fields[1:])
    if not lexicon:
        raise DecoderError(f"{path}: the lexicon is empty")
    return lexicon


class LexiconDecoder(Decoder):
    """flashlight-text's lexicon decoder. ``beam_threshold`` prunes hypotheses this far below
    the best (flashlight's own default is 50); ``beam_size_token`` limits the tokens tried per
    frame (None: all)."""

    name = "lexicon"

    def __init__(self, tokenizer: Tokenizer, lexicon: str | Path, lm: str | Path | None = None,
                 lm_weight: float = 0.5, word_score: float = 0.0, beam_size: int = 16,
                 nbest: int = 1, beam_threshold: float = 25.0, beam_size_token: int | None = None,
                 sil_score: float = 0.0) -> None:
        # BPE pieces carry their own word starts: flashlight's optional "silence" between
        # words is then <unk>, which no spelling uses.
        if tokenizer.space_id is None and tokenizer.unit != "bpe":
            raise DecoderError("the lexicon decoder needs a <space> word-boundary token; this "
                               f"model's tokens are {tokenizer.unit}s without one (use --decoder "
                               "beam instead; phone models: train with tokenizer.word_boundary=true)")
        self.boundary_id = tokenizer.space_id
        self.sil_id = tokenizer.space_id if tokenizer.space_id is not None else tokenizer.unk_id
        if nbest > beam_size:
            raise DecoderError(f"--nbest {nbest} is larger than --beam-size {beam_size}")
        spellings = read_lexicon(lexicon, tokenizer)  # one-line errors before flashlight reads it
        self.spellings = spellings  # word -> its spellings in the model's tokens
        # The closing frame is needed when spellings end with the boundary (asr lm lexicon
        # and the phone recipes write them so); BPE and boundary-free lexicons need none.
        self.close_utterance = self.boundary_id is not None and any(
            s[-1] == tokenizer.tokens[self.boundary_id] for ss in spellings.values() for s in ss)
        if lm is not None and not Path(lm).is_file():
            raise DecoderError(f"{lm}: language model not found (asr lm build writes one)")
        try:
            from torchaudio.models.decoder import ctc_decoder
        except ImportError as exc:  # pragma: no cover - flashlight-text is a dependency
            raise DecoderError(f"the lexicon decoder needs flashlight-text ({exc}); "
                               "pip install flashlight-text") from None
        self.tokenizer = tokenizer
        self.nbest = nbest
        self.lm_weight = lm_weight
        self.word_score = word_score
        # KenLM prints its progress bars for an ARPA file straight to file descriptor 2.
        with native_stderr_silenced():
            try:
                self._decoder = ctc_decoder(
                    lexicon=str(lexicon), tokens=list(tokenizer.tokens),
                    lm=str(lm) if lm is not None else None, nbest=nbest, beam_size=beam_size,
                    beam_size_token=beam_size_token, beam_threshold=beam_threshold,
                    lm_weight=lm_weight * math.log(10.0), word_score=word_score,
                    sil_score=sil_score, blank_token=BLANK, sil_token=tokenizer.tokens[self.sil_id],
                    unk_word=UNK)
            except Exception as exc:  # noqa: BLE001 - flashlight reports bad files as RuntimeError
                failure = str(exc).splitlines()[0]
            else:
                failure = None
        if failure is not None:
            raise DecoderError(f"cannot build the lexicon decoder from {lexicon}"
                               f"{' and ' + str(lm) if lm else ''}: {failure}")

    def _closed(self, emissions: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, time, vocab)`` -> ``(batch, time + 1, vocab)`` with a certain boundary
        frame right after each utterance's last frame, and the lengths one longer."""
        batch, time, vocab = emissions.shape
        out = torch.full((batch, time + 1, vocab), IMPOSSIBLE, dtype=emissions.dtype)
        out[:, :time] = emissions
        rows = torch.arange(batch)
        out[rows, lengths.long()] = IMPOSSIBLE
        out[rows, lengths.long(), self.boundary_id] = 0.0
        return out, lengths + 1

    @torch.no_grad()
    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """``(batch, time, vocab)`` log-posteriors -> n-best word sequences with their tokens."""
        emissions = log_probs.detach().to("cpu", torch.float32).contiguous()
        lengths = lengths.detach().to("cpu", torch.int32)
        if self.close_utterance:
            emissions, lengths = self._closed(emissions, lengths)
        results = self._decoder(emissions, lengths)
        out: list[list[Hypothesis]] = []
        for i, utt in enumerate(results):
            hyps = []
            for h in utt:
                tokens = [int(t) for t in h.tokens.tolist()]
                # flashlight's path starts and ends in its boundary state: drop those, the
                # acoustic model emits <space> only between words.
                while tokens and tokens[0] == self.sil_id:
                    tokens.pop(0)
                while tokens and tokens[-1] == self.sil_id:
                    tokens.pop()
                # flashlight scores its best alignment, in which the last word also ends with
                # the boundary token of its spelling (in the closing frame when the model did
                # not emit one): that path's acoustic log-probability, and the rest (weighted
                # LM, word scores) is the LM part.
                closes = self.boundary_id is not None and (bool(tokens) or self.close_utterance)
                am = best_path_log_prob(emissions[i, : int(lengths[i])],
                                        [*tokens, self.boundary_id] if closes else tokens)
                hyps.append(Hypothesis(tokens, float(h.score), am, float(h.score) - am,
                                       words=[w for w in h.words if w != UNK]))
            out.append(hyps)
        return out
