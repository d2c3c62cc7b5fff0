"""Command-line entry points: ``asr`` (subcommands) and ``transcribe``."""
