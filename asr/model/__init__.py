"""The BiLSTM-CTC acoustic model, its front-ends, recurrent layers and parameter counts."""

from asr.model.acoustic import AcousticModel, FeatureAugment, build_model
from asr.model.lstm import FusedLSTM, LayeredLSTM, build_recurrent
from asr.model.params import count_parameters, graves_weight_count
from asr.model.peephole import PeepholeLSTM
from asr.model.subsampling import Conv2dSubsampling, FrameStack, stack_frames

__all__ = [
    "AcousticModel",
    "Conv2dSubsampling",
    "FeatureAugment",
    "FrameStack",
    "FusedLSTM",
    "LayeredLSTM",
    "PeepholeLSTM",
    "build_model",
    "build_recurrent",
    "count_parameters",
    "graves_weight_count",
    "stack_frames",
]
