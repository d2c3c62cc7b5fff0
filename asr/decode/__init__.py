"""Decoders from CTC log-probabilities to token sequences.

``DECODERS`` names them; :func:`build_decoder` builds one; every decoder's
``decode((batch, time, vocab) log-probs, (batch,) lengths)`` returns n-best
:class:`Hypothesis` lists.
"""

from asr.decode.base import Decoder, DecoderError, Hypothesis
from asr.decode.greedy import GreedyDecoder, GreedyHypothesis, greedy_decode
from asr.decode.registry import DECODERS, build_decoder

__all__ = [
    "DECODERS",
    "Decoder",
    "DecoderError",
    "GreedyDecoder",
    "GreedyHypothesis",
    "Hypothesis",
    "build_decoder",
    "greedy_decode",
]
