"""Kaldi data directories, datasets, batching."""

from asr.data.datadir import DataDir, read_data_dir, write_data_dir
from asr.data.utterance import Utterance

__all__ = ["DataDir", "Utterance", "read_data_dir", "write_data_dir"]
