"""Kaldi data directories, datasets, batching."""

from asr.data.kaldi import DataDir, Utterance, read_data_dir, write_data_dir

__all__ = ["DataDir", "Utterance", "read_data_dir", "write_data_dir"]
