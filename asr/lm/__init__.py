"""N-gram language models: ARPA reading and querying, a built-in modified Kneser-Ney
estimator, and KenLM's ``lmplz`` / ``build_binary``."""

from asr.lm.arpa import NgramLM, format_arpa, read_arpa
from asr.lm.build import build_lm, char_units, read_sentences
from asr.lm.errors import LMError
from asr.lm.estimate import estimate_kneser_ney

__all__ = [
    "LMError",
    "NgramLM",
    "build_lm",
    "char_units",
    "estimate_kneser_ney",
    "format_arpa",
    "read_arpa",
    "read_sentences",
]
