"""Parameter counts, and the weight counts of Graves, Mohamed & Hinton (2013), Table 1.

The paper's LSTM has peephole connections and one bias per gate: ``4H (in + H) + 7H`` weights
per direction and layer. ``nn.LSTM`` has no peepholes and two biases per gate
(``4H (in + H) + 8H``), so the same network has ``H`` more weights per direction and layer here
(1,500 more for CTC-3l-250h: 3,789,062 against the paper's 3,787,562). With ``model.cell:
peephole`` the counts are the paper's exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from asr.config import ModelConfig, load_config
from asr.model.acoustic import AcousticModel

# Table 1 of the paper: network -> weights as printed (TIMIT, 123 inputs, 62 outputs).
GRAVES_TABLE1 = {
    "CTC-1l-250h": 0.8e6,
    "CTC-1l-622h": 3.8e6,
    "CTC-2l-250h": 2.3e6,
    "CTC-3l-250h": 3.8e6,
    "CTC-5l-250h": 6.8e6,
    "CTC-3l-421h-uni": 3.8e6,
}
GRAVES_INPUTS = 123  # 40 filterbank channels + energy, with deltas and delta-deltas
GRAVES_OUTPUTS = 62  # 61 TIMIT phones + blank


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def graves_weight_count(config: ModelConfig, feat_dim: int, num_tokens: int) -> int | None:
    """Weights of ``config``'s network counted as the paper counts them (peephole cells, one bias
    per gate), or None when the network has parts the paper has no count for (projections,
    a conv2d front-end, layer norm)."""
    if config.proj_size or config.frontend != "stack" or config.layer_norm:
        return None
    directions = 2 if config.bidirectional else 1
    hidden = config.hidden_size
    total = 0
    layer_in = feat_dim * config.frame_stack
    for _ in range(config.num_layers):
        total += directions * (4 * hidden * (layer_in + hidden) + 7 * hidden)
        layer_in = directions * hidden
    return total + layer_in * num_tokens + num_tokens


@dataclass
class PresetCount:
    name: str  # the paper's row name, e.g. CTC-3l-250h
    path: Path
    parameters: int  # trainable parameters of the model built here
    graves_count: int | None  # the same network counted as the paper counts
    paper: float | None  # the paper's printed count


def preset_name(path: Path) -> str:
    """``ctc_3l_421h_uni.yaml`` -> ``CTC-3l-421h-uni``."""
    parts = path.stem.split("_")
    return "-".join([parts[0].upper(), *parts[1:]])


def preset_counts(
    paths: list[Path], feat_dim: int = GRAVES_INPUTS, num_tokens: int = GRAVES_OUTPUTS
) -> list[PresetCount]:
    """Build each model preset with ``feat_dim`` inputs and ``num_tokens`` outputs and count."""
    rows = []
    for path in paths:
        config = load_config([path]).model
        model = AcousticModel(config, feat_dim, num_tokens)
        name = preset_name(path)
        rows.append(
            PresetCount(
                name,
                path,
                count_parameters(model),
                graves_weight_count(config, feat_dim, num_tokens),
                GRAVES_TABLE1.get(name),
            )
        )
    return rows


def format_preset_table(rows: list[PresetCount]) -> str:
    """A markdown table of :func:`preset_counts`."""
    lines = [
        "| preset | file | parameters here (nn.LSTM) | weights as the paper counts | paper |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        graves = f"{row.graves_count:,}" if row.graves_count is not None else "-"
        paper = f"{row.paper / 1e6:.1f}M" if row.paper is not None else "-"
        lines.append(f"| {row.name} | {row.path.name} | {row.parameters:,} | {graves} | {paper} |")
    return "\n".join(lines)
