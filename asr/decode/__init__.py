"""Decoders from CTC log-probabilities to token sequences."""

from asr.decode.greedy import GreedyHypothesis, greedy_decode

__all__ = ["GreedyHypothesis", "greedy_decode"]
