"""The acoustic model: deep bidirectional LSTM with a linear CTC output layer.

Graves, Mohamed & Hinton (2013), "Speech Recognition with Deep Recurrent Neural Networks":
N stacked bidirectional LSTM layers, a softmax over the output units plus a CTC blank (index 0).
Padded batches run through packed sequences, so each utterance's output does not depend on what
it is batched with.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asr.config import FeatureConfig, ModelConfig
from asr.features import FeatureNormalizer


def stack_frames(feats: torch.Tensor, lengths: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate each ``k`` consecutive frames and keep every k-th block.

    ``(batch, time, dim)`` -> ``(batch, ceil(time / k), dim * k)``; a last partial block is
    completed with zeros. Lengths become ``ceil(length / k)``.
    """
    if k == 1:
        return feats, lengths
    batch, time, dim = feats.shape
    # Zero the padding frames: after global CMVN they hold -mean/std, which would otherwise be
    # stacked into an utterance's last partial block and make it depend on the batch.
    valid = torch.arange(time, device=feats.device)[None, :] < lengths.to(feats.device)[:, None]
    feats = feats * valid.unsqueeze(-1)
    pad = (-time) % k
    if pad:
        feats = torch.nn.functional.pad(feats, (0, 0, 0, pad))
    stacked = feats.reshape(batch, (time + pad) // k, dim * k)
    return stacked, torch.div(lengths + k - 1, k, rounding_mode="floor")


class AcousticModel(nn.Module):
    """``(batch, time, feat_dim)`` features -> ``(batch, time', num_tokens)`` CTC log-probs."""

    def __init__(self, config: ModelConfig, feat_dim: int, num_tokens: int, cmvn: str = "global") -> None:
        super().__init__()
        self.config = config
        self.feat_dim = feat_dim
        self.num_tokens = num_tokens
        self.normalizer = FeatureNormalizer(cmvn, feat_dim)
        self.lstm = nn.LSTM(
            input_size=feat_dim * config.frame_stack,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        directions = 2 if config.bidirectional else 1
        self.output = nn.Linear(config.hidden_size * directions, num_tokens)
        if config.init == "uniform":
            for param in self.parameters():
                if param.requires_grad:
                    nn.init.uniform_(param, -config.init_scale, config.init_scale)

    @property
    def subsampling(self) -> int:
        return self.config.frame_stack

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        k = self.config.frame_stack
        return torch.div(lengths + k - 1, k, rounding_mode="floor")

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return log-probabilities ``(batch, time', num_tokens)`` and lengths ``(batch,)``."""
        feats = self.normalizer(feats, lengths)
        feats, lengths = stack_frames(feats, lengths, self.config.frame_stack)
        packed = pack_padded_sequence(feats, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hidden, _ = self.lstm(packed)
        hidden, _ = pad_packed_sequence(hidden, batch_first=True, total_length=feats.shape[1])
        logits = self.output(hidden)
        return torch.log_softmax(logits.float(), dim=-1), lengths


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(
    model_config: ModelConfig, feature_config: FeatureConfig, num_tokens: int
) -> AcousticModel:
    return AcousticModel(model_config, feature_config.n_mels, num_tokens, cmvn=feature_config.cmvn)
