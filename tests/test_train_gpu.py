"""The GPU paths of training: device placement, bf16 autocast, features on the fly on the
GPU, the benchmark's peak-memory column. Skipped where CUDA is not usable."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from train_utils import examples, tiny_config, tokenizer

from asr.cli import main as asr_main
from asr.model import AcousticModel
from asr.train import Trainer
from asr.train.data import make_batch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not usable here"),
]

TRAIN = examples(8, seed=11)


def test_bf16_update_on_the_gpu_is_close_to_fp32(tmp_path: Path) -> None:
    batch = make_batch(TRAIN[:6])
    results = {}
    for precision in ("fp32", "bf16"):
        trainer = Trainer(tiny_config("train.device=cuda", f"train.precision={precision}"), tmp_path / precision,
                          tokenizer(), TRAIN, [], progress=False)
        assert next(trainer.model.parameters()).is_cuda
        results[precision] = trainer.train_step([batch], 6, 0.0)
    assert results["bf16"].updated and math.isfinite(results["bf16"].loss)
    assert abs(results["bf16"].loss - results["fp32"].loss) / results["fp32"].loss < 0.03


def test_gpu_model_equals_cpu_model() -> None:
    """cuDNN and the peephole cell on the GPU give the CPU's log-probabilities."""
    from asr.config import ModelConfig

    for cell in ("lstm", "peephole"):
        torch.manual_seed(0)
        model = AcousticModel(ModelConfig(num_layers=2, hidden_size=16, cell=cell), 6, 7, cmvn="none").eval()
        feats, lengths = torch.randn(3, 20, 6), torch.tensor([20, 13, 5])
        with torch.no_grad():
            cpu, _ = model(feats, lengths)
            gpu, _ = model.cuda()(feats.cuda(), lengths.cuda())
        # cuDNN and the CPU each within eps * (the network's summed dot-product lengths,
        # ~6+16+1 + 32+16+1 + 32 ~ 100) * max|log-prob| (<~ 5) ~ 3e-5 of exact: 2x that < 1e-4.
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)


def test_benchmark_on_the_gpu_reports_peak_memory(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert asr_main.main(["benchmark", "train", "--device", "cuda", "--steps", "2", "--warmup", "1",
                          "--repeat", "1", "--variants", "bare,ours", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert all(r["peak_mib"] is not None and r["peak_mib"] > 0 for r in rows)
