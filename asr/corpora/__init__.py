"""Corpus-specific data preparation: each module turns one corpus layout into Kaldi data dirs."""
