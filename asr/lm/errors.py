"""Errors of the language-model tools."""

from __future__ import annotations

from asr.errors import AsrError


class LMError(AsrError):
    """A language model file is missing or malformed, or an LM tool failed or is absent."""
