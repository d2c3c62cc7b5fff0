"""The acoustic model: deep (bidirectional) LSTM with a linear CTC output layer.

Graves, Mohamed & Hinton (2013), "Speech Recognition with Deep Recurrent Neural Networks":
N stacked bidirectional LSTM layers, a softmax over the output units plus a CTC blank (index 0).
Padded batches run through packed sequences, so each utterance's output does not depend on what
it is batched with.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from asr.config import FeatureConfig, ModelConfig
from asr.errors import ConfigError
from asr.features import FeatureNormalizer, feature_dim
from asr.model.lstm import build_recurrent
from asr.model.subsampling import Conv2dSubsampling, FrameStack, subsampled_lengths

# (batch, time, dim) features and (batch,) lengths -> augmented features of the same shape.
FeatureAugment = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class AcousticModel(nn.Module):
    """``(batch, time, feat_dim)`` features -> ``(batch, time', num_tokens)`` CTC log-probs.

    normaliser (CMVN) -> front-end (frame stacking or conv2d, ``k``-fold subsampling) ->
    recurrent stack -> linear -> log-softmax.
    """

    def __init__(
        self, config: ModelConfig, feat_dim: int, num_tokens: int, cmvn: str = "global"
    ) -> None:
        super().__init__()
        if config.frame_stack < 1:
            raise ConfigError(f"model.frame_stack: {config.frame_stack} must be 1 or more")
        self.config = config
        self.feat_dim = feat_dim
        self.num_tokens = num_tokens
        self.normalizer = FeatureNormalizer(cmvn, feat_dim)
        self.frontend: FrameStack | Conv2dSubsampling
        if config.frontend == "conv2d":
            self.frontend = Conv2dSubsampling(feat_dim, config.frame_stack, config.conv_channels)
        elif config.frontend == "stack":
            self.frontend = FrameStack(feat_dim, config.frame_stack)
        else:
            raise ConfigError(f"model.frontend: unknown front-end {config.frontend!r}; use stack or conv2d")
        self.lstm = build_recurrent(config, self.frontend.output_dim)
        self.output = nn.Linear(self.lstm.output_size, num_tokens)
        if config.init == "uniform":
            for param in self.parameters():
                if param.requires_grad:
                    nn.init.uniform_(param, -config.init_scale, config.init_scale)

    @property
    def subsampling(self) -> int:
        return self.config.frame_stack

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return subsampled_lengths(lengths, self.config.frame_stack)

    def forward(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        augment: FeatureAugment | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return log-probabilities ``(batch, time', num_tokens)`` (float32) and lengths.

        ``augment`` (e.g. SpecAugment) is applied to the normalised features, in training mode
        only.
        """
        feats = self.normalizer(feats, lengths)
        if augment is not None and self.training:
            feats = augment(feats, lengths)
        feats, lengths = self.frontend(feats, lengths)
        hidden = self.lstm.run(feats, lengths)
        logits = self.output(hidden)
        return torch.log_softmax(logits.float(), dim=-1), lengths


def build_model(
    model_config: ModelConfig, feature_config: FeatureConfig, num_tokens: int
) -> AcousticModel:
    """The model for features of ``feature_config`` (their dimension) and ``num_tokens`` outputs."""
    return AcousticModel(
        model_config, feature_dim(feature_config), num_tokens, cmvn=feature_config.cmvn
    )
