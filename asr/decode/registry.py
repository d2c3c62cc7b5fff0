"""The decoders by name, built with one set of options (torchaudio and flashlight-text are
imported by the decoders that need them, when they are built)."""

from __future__ import annotations

from pathlib import Path

from asr.decode.base import Decoder, DecoderError
from asr.decode.cuda import CudaBeamDecoder
from asr.decode.fusion import build_fusion
from asr.decode.greedy import GreedyDecoder
from asr.decode.lexicon import LexiconDecoder
from asr.decode.prefix_beam import PrefixBeamDecoder
from asr.lm import NgramLM, read_arpa
from asr.text.tokenizer import Tokenizer

DECODERS: dict[str, str] = {
    "greedy": "best path: argmax per frame, repeats merged, blanks removed (CPU or GPU)",
    "beam": "CTC prefix beam search, optional word/character n-gram shallow fusion (CPU)",
    "lexicon": "lexicon-constrained beam search with a word n-gram LM (flashlight-text, CPU)",
    "cuda": "CTC beam search on the GPU (torchaudio cuda_ctc_decoder), no LM",
}


def build_decoder(
    name: str,
    tokenizer: Tokenizer,
    *,
    beam_size: int = 16,
    nbest: int = 1,
    lm: str | Path | object | None = None,
    lm_unit: str = "word",
    lexicon: str | Path | None = None,
    lm_weight: float = 0.5,
    word_score: float = 0.0,
    token_min_logp: float = -5.0,
    token_topk: int | None = None,
    beam_threshold: float | None = 10.0,
    oov_penalty: float = -10.0,
) -> Decoder:
    """A decoder of ``DECODERS`` for a model with ``tokenizer``.

    ``lm``: an ARPA path (or a loaded :class:`asr.lm.NgramLM`) for ``beam``; an ARPA or KenLM
    binary path for ``lexicon``. ``lm_weight`` multiplies natural-log LM probabilities;
    ``word_score`` is added per word. ``beam_threshold`` (natural log) drops beams that far
    below the best (the lexicon decoder uses 2.5 times it, flashlight's scale being coarser).
    """
    if name == "greedy":
        if lm is not None or lexicon is not None:
            raise DecoderError("greedy decoding uses no LM or lexicon; choose --decoder beam or lexicon")
        return GreedyDecoder()
    if name == "beam":
        if lexicon is not None:
            raise DecoderError("--lexicon is for --decoder lexicon; the beam decoder needs none")
        model = lm if isinstance(lm, NgramLM) or lm is None else read_arpa(lm)
        fusion = build_fusion(model, tokenizer, lm_weight, word_score, lm_unit, oov_penalty)
        return PrefixBeamDecoder(beam_size, nbest, token_topk, token_min_logp, beam_threshold,
                                 fusion)
    if name == "lexicon":
        if lexicon is None:
            raise DecoderError("--decoder lexicon needs --lexicon FILE (asr lm lexicon writes one)")
        if lm is not None and not isinstance(lm, (str, Path)):
            raise DecoderError("the lexicon decoder takes the LM as a file path")
        threshold = 25.0 if beam_threshold is None else 2.5 * beam_threshold
        return LexiconDecoder(tokenizer, lexicon, lm, lm_weight, word_score, beam_size, nbest,
                              threshold, token_topk)
    if name == "cuda":
        if lm is not None or lexicon is not None:
            raise DecoderError("the cuda decoder uses no LM or lexicon; use --decoder beam or lexicon")
        return CudaBeamDecoder(tokenizer, beam_size, nbest)
    raise DecoderError(f"unknown decoder '{name}' (choose from {', '.join(DECODERS)})")
