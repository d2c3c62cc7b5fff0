"""asr export: TorchScript and ONNX graphs give the model's log-probs and greedy output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transcribe_utils import make_model_dir, one_thread  # noqa: F401 - fixture

from asr.cli.main import main as asr_main
from asr.decode import greedy_decode
from asr.export import ExportError, export_model
from asr.inference import load_model

pytestmark = pytest.mark.usefixtures("one_thread")

onnxruntime = pytest.importorskip("onnxruntime")

VARIANTS = {
    "stack3-global": [],
    "conv2d-utterance-layernorm": ["model.frontend=conv2d", "model.frame_stack=4",
                                   "features.cmvn=utterance", "model.num_layers=2",
                                   "model.layer_norm=true"],
}


def _features(recognizer, seconds: float, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    signal = torch.from_numpy((rng.standard_normal(int(seconds * 8000)) * 0.1).astype(np.float32))
    feats, _ = recognizer.frontend(signal[None], torch.tensor([len(signal)]))
    return feats


def _greedy_text(recognizer, log_probs: torch.Tensor) -> str:
    (hyp,) = greedy_decode(log_probs, torch.tensor([log_probs.shape[1]]))
    return recognizer.tokenizer.decode(hyp.tokens)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_exported_graphs_match_the_model(tmp_path: Path, variant: str) -> None:
    model_dir = make_model_dir(tmp_path / "m", *VARIANTS[variant])
    recognizer = load_model(str(model_dir), device="cpu")
    script = torch.jit.load(str(export_model(model_dir, "torchscript")))
    onnx_path = export_model(model_dir, "onnx", tmp_path / "onnx" / "model.onnx")
    assert sorted(p.name for p in onnx_path.parent.iterdir()) == ["config.yaml", "model.onnx", "tokens.txt"]
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for seconds, seed in [(0.37, 0), (2.3, 1), (5.01, 2)]:  # lengths other than the traced one
        feats = _features(recognizer, seconds, seed)
        with torch.no_grad():
            expected, _ = recognizer.model(feats, torch.tensor([feats.shape[1]]))
            scripted = script(feats)
        onnx_out = torch.from_numpy(session.run(None, {"features": feats.numpy()})[0])
        assert scripted.shape == expected.shape == onnx_out.shape
        # TorchScript runs the same ATen kernels on the same thread: at most a fused op
        # rounds differently, a few eps * max|log-prob| (<~ 20) ~ 1e-5; 1e-4 is 10x over.
        assert (scripted - expected).abs().max().item() < 1e-4
        # onnxruntime has its own LSTM/GEMM kernels: each of the two is within
        # eps * (sum of the dot-product lengths along the network, ~110 (stack3) or ~590
        # (conv2d + 2 layers)) * max|log-prob| (~18 or ~9) of exact, <= 1.2e-4 / 3.2e-4,
        # so they agree to twice that; 1e-3 leaves >1.5x on that worst case. A wrong export
        # (dropped layer, lost normalisation, reversed direction) moves log-probs by >= 0.1.
        assert (onnx_out - expected).abs().max().item() < 1e-3
        text = _greedy_text(recognizer, expected)
        assert _greedy_text(recognizer, scripted) == text == _greedy_text(recognizer, onnx_out)


def test_greedy_output_equals_transcribe_on_speech(tmp_path: Path, fsdd_recordings: Path) -> None:
    model_dir = make_model_dir(tmp_path / "m")
    recognizer = load_model(str(model_dir), device="cpu")
    session = onnxruntime.InferenceSession(str(export_model(model_dir, "onnx")),
                                           providers=["CPUExecutionProvider"])
    for path in sorted(fsdd_recordings.glob("*_nicolas_*.wav"))[:5]:
        signal, _ = sf.read(path, dtype="float32")
        feats, _ = recognizer.frontend(torch.from_numpy(signal)[None], torch.tensor([len(signal)]))
        onnx_out = torch.from_numpy(session.run(None, {"features": feats.numpy()})[0])
        assert _greedy_text(recognizer, onnx_out) == recognizer.transcribe(path).text


def test_cli_and_errors(tmp_path: Path, capsys) -> None:
    model_dir = make_model_dir(tmp_path / "m")
    assert asr_main(["export", "--model", str(model_dir), "--format", "torchscript"]) == 0
    assert capsys.readouterr().out == f"wrote {model_dir / 'model.ts'}\n"
    assert asr_main(["export", "--model", str(tmp_path), "--format", "onnx"]) == 1
    assert "not a model directory" in capsys.readouterr().err
    peephole = make_model_dir(tmp_path / "p", "model.cell=peephole")
    with pytest.raises(ExportError, match="peephole LSTM cells cannot be exported"):
        export_model(peephole, "onnx")
    lstmp = make_model_dir(tmp_path / "lstmp", "model.num_layers=2", "model.proj_size=8")
    with pytest.raises(ExportError, match="ONNX has no LSTM with projections"):
        export_model(lstmp, "onnx")
    recognizer = load_model(str(lstmp), device="cpu")
    feats = _features(recognizer, 1.3, 0)
    with torch.no_grad():
        expected, _ = recognizer.model(feats, torch.tensor([feats.shape[1]]))
    scripted = torch.jit.load(str(export_model(lstmp, "torchscript")))(feats)
    assert (scripted - expected).abs().max().item() < 1e-4  # same kernels (see above)
    with pytest.raises(ExportError, match="unknown export format"):
        export_model(model_dir, "tflite")
