"""Feature extraction: log-mel (librosa-equal), Kaldi fbank/MFCC, deltas, CMVN, dumping.

Build the extractor a config describes with :func:`build_frontend`; its output dimension is
:func:`feature_dim`. See ``docs/features.md``.
"""

from asr.features.cmvn import (
    CMVN_MODES,
    CmvnStats,
    FeatureNormalizer,
    SpeakerTable,
    group_stats,
    normalize,
    read_cmvn_stats,
    utterance_cmvn,
    write_cmvn_stats,
)
from asr.features.deltas import Deltas, add_deltas, delta_filters
from asr.features.extractor import FEATURE_TYPES, SpeakerCmvn, build_frontend, feature_dim
from asr.features.kaldi import KaldiFbank, KaldiMfcc, kaldi_num_frames
from asr.features.logmel import LogMel, frame_lengths

__all__ = [
    "CMVN_MODES",
    "FEATURE_TYPES",
    "CmvnStats",
    "Deltas",
    "FeatureNormalizer",
    "KaldiFbank",
    "KaldiMfcc",
    "LogMel",
    "SpeakerCmvn",
    "SpeakerTable",
    "add_deltas",
    "build_frontend",
    "delta_filters",
    "feature_dim",
    "frame_lengths",
    "group_stats",
    "kaldi_num_frames",
    "normalize",
    "read_cmvn_stats",
    "utterance_cmvn",
    "write_cmvn_stats",
]
