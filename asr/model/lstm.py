"""The recurrent stack: N (bi)LSTM layers over padded batches whose padding never reaches an
utterance's frames (packed sequences, or each direction run separately; ``model.lstm_impl``).

``FusedLSTM`` is one multi-layer ``nn.LSTM`` (cuDNN on a GPU), with optional projections
(LSTMP, ``proj_size``) and dropout between layers. ``LayeredLSTM`` runs one layer at a time so
that layer norm can sit between layers, or the layers can be peephole LSTMs; it is used only
when one of those is asked for.
"""

from __future__ import annotations

import torch
from torch import _VF, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asr.config import ModelConfig
from asr.errors import ConfigError
from asr.model.peephole import PeepholeLSTM, reverse_padded
from asr.model.subsampling import length_mask


def cpu_runs_bf16_lstm() -> bool:
    """Whether this CPU's oneDNN builds a bfloat16 LSTM: it needs AVX-512 (or newer), so it
    fails on older processors and under ONEDNN_MAX_CPU_ISA=AVX2, where bf16 training on the
    CPU is not possible at all."""
    lstm = nn.LSTM(4, 4, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.zeros(1, 2, 4))
    except RuntimeError:
        return False
    return True


def run_packed(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run ``nn.LSTM`` (batch_first) over ``(batch, time, dim)`` as a packed sequence, so padding
    never enters the recurrence; returns ``(batch, time, out)`` with zeros past each length."""
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


def run_padded(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The same result as :func:`run_packed` with ``lstm``'s own weights, on padded tensors:
    each direction of each layer runs as a one-layer unidirectional LSTM, the backward one over
    every utterance reversed within its length. Padding then only ever follows an utterance's
    frames, so it cannot reach them. PyTorch's CPU LSTM is several times faster on padded
    batches than on packed ones (its packed backward pass is not fused)."""
    batch = x.shape[0]
    directions = 2 if lstm.bidirectional else 1
    out_size = lstm.proj_size or lstm.hidden_size
    mask = length_mask(lengths.to(x.device), x.shape[1]).unsqueeze(-1)
    for layer in range(lstm.num_layers):
        outputs = []
        for direction in range(directions):
            weights = [getattr(lstm, name) for name in lstm._all_weights[layer * directions + direction]]
            inputs = reverse_padded(x, lengths) if direction else x
            h0 = inputs.new_zeros(1, batch, out_size)
            c0 = inputs.new_zeros(1, batch, lstm.hidden_size)
            out = _VF.lstm(inputs, (h0, c0), weights, lstm.bias, 1, 0.0, lstm.training, False, True)[0]
            outputs.append(reverse_padded(out, lengths) if direction else out)
        x = torch.cat(outputs, dim=-1) if directions == 2 else outputs[0]
        if layer < lstm.num_layers - 1 and lstm.dropout > 0:
            x = nn.functional.dropout(x, lstm.dropout, lstm.training)
    return x * mask


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor, impl: str) -> torch.Tensor:
    """``impl``: ``packed``, ``padded`` or ``auto`` (packed on CUDA, where cuDNN handles
    variable lengths itself; padded elsewhere)."""
    if impl == "packed" or (impl == "auto" and x.is_cuda):
        return run_packed(lstm, x, lengths)
    return run_padded(lstm, x, lengths)


class FusedLSTM(nn.LSTM):
    """Multi-layer ``nn.LSTM`` with a padded-batch interface. Its parameter names are those of
    ``nn.LSTM`` (``weight_ih_l0``, ...), which the model directories store."""

    impl = "auto"

    @property
    def output_size(self) -> int:
        return (2 if self.bidirectional else 1) * (self.proj_size or self.hidden_size)

    def run(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(batch, time, input_size)`` -> ``(batch, time, output_size)``."""
        return run_lstm(self, x, lengths, self.impl)


class LayeredLSTM(nn.Module):
    """N single-layer (bi)LSTMs (``nn.LSTM`` or :class:`PeepholeLSTM`) with, between layers,
    optional layer norm and then dropout."""

    def __init__(self, config: ModelConfig, input_size: int) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        size = input_size
        for index in range(config.num_layers):
            layer: nn.Module
            if config.cell == "peephole":
                layer = PeepholeLSTM(size, config.hidden_size, config.bidirectional)
            else:
                layer = nn.LSTM(
                    size,
                    config.hidden_size,
                    bidirectional=config.bidirectional,
                    proj_size=config.proj_size,
                    batch_first=True,
                )
            self.layers.append(layer)
            size = (2 if config.bidirectional else 1) * (
                config.proj_size if config.cell == "lstm" and config.proj_size else config.hidden_size
            )
            if config.layer_norm and index < config.num_layers - 1:
                self.norms.append(nn.LayerNorm(size))
        self.dropout = nn.Dropout(config.dropout)
        self.output_size = size

    def run(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(batch, time, input_size)`` -> ``(batch, time, output_size)``."""
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            if isinstance(layer, PeepholeLSTM):
                x = layer(x, lengths)
            else:
                x = run_lstm(layer, x, lengths, self.config.lstm_impl)
            if index < last:
                if self.config.layer_norm:
                    x = self.norms[index](x)
                x = self.dropout(x)
        return x


def build_recurrent(config: ModelConfig, input_size: int) -> FusedLSTM | LayeredLSTM:
    """The fused cuDNN stack unless layer norm or peephole cells need one layer at a time."""
    if config.cell not in ("lstm", "peephole"):
        raise ConfigError(f"model.cell: unknown cell {config.cell!r}; use lstm or peephole")
    if config.proj_size and config.cell == "peephole":
        raise ConfigError("model.proj_size: projections need model.cell=lstm (not peephole)")
    if config.proj_size < 0 or (config.proj_size and config.proj_size >= config.hidden_size):
        raise ConfigError(
            f"model.proj_size: {config.proj_size} must be 0 (no projection) or below "
            f"model.hidden_size ({config.hidden_size})"
        )
    if config.lstm_impl not in ("auto", "packed", "padded"):
        raise ConfigError(f"model.lstm_impl: unknown {config.lstm_impl!r}; use auto, packed or padded")
    if config.cell == "lstm" and not config.layer_norm:
        fused = FusedLSTM(
            input_size=input_size,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            proj_size=config.proj_size,
            batch_first=True,
        )
        fused.impl = config.lstm_impl
        return fused
    return LayeredLSTM(config, input_size)
