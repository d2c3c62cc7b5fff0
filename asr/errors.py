"""Exceptions that the command-line tools turn into one-line messages."""

from __future__ import annotations


class AsrError(Exception):
    """An error caused by the user's input or environment, reported without a traceback.

    The message must name the file, line or utterance at fault and say what to do.
    """

    exit_code = 1


class AudioError(AsrError):
    """An audio file is missing, unreadable, empty or not audio."""


class DataDirError(AsrError):
    """A Kaldi data directory is missing files or holds malformed lines."""


class ConfigError(AsrError):
    """A configuration file or command-line override is invalid."""


class ModelError(AsrError):
    """A model directory is missing, incomplete or from an incompatible version."""
