"""Tiny untrained model directories for the transcribe, inference and export tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr.config import load_config
from asr.features import build_frontend
from asr.model import build_model
from asr.modeldir import save_model_dir
from asr.text import Tokenizer

MARGIN = 0.3
TEXTS = ["one two three four five six seven eight nine zero oh"]


def make_model_dir(path: Path, *overrides: str, seed: int = 0, output_scale: float = 15.0) -> Path:
    """A 1-layer BiLSTM of 16 cells over 20 log-mels at 8 kHz, 3-fold frame stacking, global
    CMVN with fixed statistics. The output layer is scaled by ``output_scale`` so that the
    argmax moves with the audio, and silence favours ``<space>``: the untrained model then
    writes words of varying letters separated at pauses, a deterministic function of the
    sound that tests can compare across code paths."""
    torch.manual_seed(seed)
    config = load_config(overrides=[
        "features.sample_rate=8000", "features.n_mels=20", "model.num_layers=1",
        "model.hidden_size=16", "model.frame_stack=3", "model.dropout=0.0", *overrides,
    ])
    tokenizer = Tokenizer.build(TEXTS)
    model = build_model(config.model, config.features, len(tokenizer))
    dim = model.feat_dim
    model.normalizer.set_stats(torch.full((dim,), -6.0), torch.full((dim,), 3.0))
    model.eval()
    with torch.no_grad():
        model.output.weight.mul_(output_scale)
        # Silence reads as a word boundary, so that pauses separate words as in a trained model.
        frontend = build_frontend(config.features)
        feats, lengths = frontend(torch.zeros(1, 4000), torch.tensor([4000]))
        silent = model(feats, lengths)[0][0, 5]
        space = tokenizer.index["<space>"]
        model.output.bias[space] += float(silent.max() - silent[space]) + MARGIN
    return save_model_dir(path, model, config, tokenizer)


@pytest.fixture
def one_thread():
    """One intra-op thread: a tiny model gains nothing from two, and on a busy machine the
    second thread's spin-waits slow small batches down many-fold."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
