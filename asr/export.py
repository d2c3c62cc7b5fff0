"""Export a model directory's acoustic model to TorchScript or ONNX.

The exported graph maps features to CTC log-probabilities for one utterance:
``(1, frames, feat_dim)`` float32 -> ``(1, frames', num_tokens)``, any number of frames. The
features are those of the model's ``config.yaml`` (``asr.features.build_frontend``; the
exported directory keeps ``config.yaml`` and ``tokens.txt`` beside the graph), and the CMVN
statistics are inside the graph as in the model (``cmvn: speaker``: the features come
normalised with their speaker's statistics, as they reach the model). Greedy search over the
output (argmax, merge repeats, drop blank 0) gives the same tokens as ``transcribe``.

The graph is the model rewritten without anything that depends on a batch's lengths (one
utterance has none): frame stacking becomes a fixed 0/1 convolution and the LSTM stack runs
as plain ``nn.LSTM`` layers, which both exporters know. Peephole cells are refused, and so
is ONNX for LSTMs with projections (``model.proj_size``; TorchScript exports them).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from asr.ensemble import is_ensemble
from asr.errors import AsrError
from asr.model import AcousticModel
from asr.model.lstm import FusedLSTM, LayeredLSTM
from asr.model.subsampling import FrameStack
from asr.modeldir import load_model_dir
from asr.rover_model import is_rover

FORMATS = {"torchscript": "model.ts", "onnx": "model.onnx"}
ONNX_OPSET = 17


class ExportError(AsrError):
    """A model cannot be exported in the asked format."""


class _StackConv(nn.Module):
    """Frame stacking as a convolution: ``(1, time, dim)`` -> ``(1, ceil(time / k), dim * k)``,
    the last partial block padded with zeros, exactly as :func:`asr.model.subsampling.stack_frames`
    (every output is one input times 1 plus zeros)."""

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        self.k = k
        weight = torch.zeros(dim * k, dim, k)
        for j in range(k):
            for d in range(dim):
                weight[j * dim + d, d, j] = 1.0
        self.register_buffer("weight", weight)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(feats.transpose(1, 2), (0, self.k - 1))
        return nn.functional.conv1d(x, self.weight, stride=self.k).transpose(1, 2)


class ExportableModel(nn.Module):
    """The acoustic model for one utterance, with no length bookkeeping (see module docs)."""

    def __init__(self, model: AcousticModel) -> None:
        super().__init__()
        self.mode = model.normalizer.mode
        self.normalizer = model.normalizer
        if isinstance(model.frontend, FrameStack):
            self.stack: nn.Module | None = (
                _StackConv(model.feat_dim, model.subsampling) if model.subsampling > 1 else None
            )
            self.conv = None
        else:
            self.stack = None
            self.conv = model.frontend
        lstm = model.lstm
        if isinstance(lstm, LayeredLSTM):
            if any(not isinstance(layer, nn.LSTM) for layer in lstm.layers):
                raise ExportError("peephole LSTM cells cannot be exported; retrain with "
                                  "model.cell=lstm")
            self.layers = nn.ModuleList(lstm.layers)
            self.norms = nn.ModuleList(lstm.norms) if lstm.config.layer_norm else nn.ModuleList()
        else:
            assert isinstance(lstm, FusedLSTM)
            plain = nn.LSTM(lstm.input_size, lstm.hidden_size, lstm.num_layers,
                            bidirectional=lstm.bidirectional, proj_size=lstm.proj_size,
                            batch_first=True)
            plain.load_state_dict(lstm.state_dict())
            self.layers = nn.ModuleList([plain])
            self.norms = nn.ModuleList()
        self.output = model.output

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``(1, frames, feat_dim)`` -> ``(1, frames', num_tokens)`` log-probabilities."""
        if self.mode == "global":
            feats = (feats - self.normalizer.mean) / self.normalizer.std
        elif self.mode == "utterance":
            mean = feats.mean(dim=1, keepdim=True)
            var = ((feats - mean) ** 2).mean(dim=1, keepdim=True)
            feats = (feats - mean) / torch.sqrt(var + 1e-5)
        if self.stack is not None:
            feats = self.stack(feats)
        if self.conv is not None:
            # One utterance: its length is its frame count (a tensor, so the graph keeps it).
            lengths = torch.ones_like(feats[:, :, 0]).sum(dim=1).long()
            feats, _ = self.conv(feats, lengths)
        x = feats
        for index, layer in enumerate(self.layers):
            x = layer(x)[0]
            if index < len(self.norms):
                x = self.norms[index](x)
        return torch.log_softmax(self.output(x).float(), dim=-1)


def export_model(model_dir: str | Path, fmt: str, output: str | Path | None = None) -> Path:
    """Export ``model_dir`` as ``fmt`` (``torchscript`` or ``onnx``) to ``output`` (default
    ``<model_dir>/model.ts`` or ``model.onnx``); copy ``config.yaml``, ``tokens.txt`` (and any
    tokenizer model) beside it when it goes elsewhere. Returns the written path."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: use {' or '.join(FORMATS)}")
    if is_rover(model_dir):
        raise ExportError(f"{model_dir}: a ROVER model (rover.yaml) combines whole systems' words, "
                          "which no exported network does; export each system on its own "
                          f"({model_dir}, {Path(model_dir) / 'system-2'}, ...)")
    if is_ensemble(model_dir):
        raise ExportError(f"{model_dir}: an ensemble (ensemble.yaml) exports one member at a "
                          "time; export each member's own model directory")
    loaded = load_model_dir(model_dir, "cpu")
    if fmt == "onnx" and loaded.config.model.proj_size:
        raise ExportError(f"{model_dir}: ONNX has no LSTM with projections (model.proj_size="
                          f"{loaded.config.model.proj_size}); export it with --format torchscript")
    wrapper = ExportableModel(loaded.model).eval()
    target = Path(output) if output is not None else Path(model_dir) / FORMATS[fmt]
    target.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(1, 37, loaded.model.feat_dim)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        # The exporters warn about tracing a fixed-length example; the graph is length-free
        # by construction (and tested at other lengths).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "torchscript":
                other = torch.randn(1, 50, loaded.model.feat_dim)
                traced = torch.jit.trace(wrapper, example, check_inputs=[(other,)])
                traced.save(str(tmp))
            else:
                _export_onnx(wrapper, example, tmp)
        tmp.replace(target)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - exporter failures come in many types
        raise ExportError(f"{model_dir}: {fmt} export failed ({str(exc).splitlines()[0]})") from None
    finally:
        tmp.unlink(missing_ok=True)
    if target.parent.resolve() != Path(model_dir).resolve():
        for item in Path(model_dir).iterdir():
            if item.is_file() and item.name not in ("model.pt", *FORMATS.values()):
                shutil.copy2(item, target.parent / item.name)
    return target


def _export_onnx(wrapper: nn.Module, example: torch.Tensor, path: Path) -> None:
    try:
        import onnx  # noqa: F401 - the exporter needs it
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install onnx onnxruntime") from None
    torch.onnx.export(
        wrapper, (example,), str(path), input_names=["features"], output_names=["log_probs"],
        dynamic_axes={"features": {1: "frames"}, "log_probs": {1: "out_frames"}},
        opset_version=ONNX_OPSET, dynamo=False,
    )
