"""Tiny synthetic training sets and configs for the trainer tests (no audio needed)."""

from __future__ import annotations

import torch

from asr.config import ExperimentConfig, load_config
from asr.data.dataset import Example
from asr.text import Tokenizer

FEAT_DIM = 6
TEXTS = ["ab", "ba", "abc", "cab", "a", "bca", "cc", "acb"]


def tiny_config(*overrides: str) -> ExperimentConfig:
    """A 2-layer BiLSTM of 6 cells over 6-dim features; 2 epochs of small batches on CPU."""
    return load_config(
        overrides=[
            f"features.n_mels={FEAT_DIM}",
            "model.num_layers=2",
            "model.hidden_size=6",
            "train.device=cpu",
            "train.epochs=2",
            "train.max_frames_per_batch=120",
            "train.max_utts_per_batch=4",
            "train.early_stop_patience=0",
            "train.lr=0.01",
            "train.num_threads=1",
            *overrides,
        ]
    )


def tokenizer() -> Tokenizer:
    return Tokenizer.build(TEXTS, "char")


def examples(n: int, seed: int = 0, prefix: str = "u") -> list[Example]:
    """``n`` utterances of 12..40 frames whose features depend on their labels (so the loss can
    fall), with a fixed seed."""
    tok = tokenizer()
    generator = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        text = TEXTS[i % len(TEXTS)]
        tokens = torch.tensor(tok.encode(text), dtype=torch.long)
        length = int(torch.randint(12, 41, (1,), generator=generator))
        feats = torch.randn(length, FEAT_DIM, generator=generator)
        # Put each label's id into a stretch of frames.
        span = length // len(tokens)
        for j, token in enumerate(tokens.tolist()):
            feats[j * span : (j + 1) * span, token % FEAT_DIM] += 3.0
        out.append(Example(f"{prefix}{i:03d}", feats, tokens, text, "spk", length / 100))
    return out
