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


EPS32 = 2.0**-24  # float32 unit roundoff


def weights(model) -> dict:
    """A detached copy of ``model``'s parameters by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_same_update(got: dict, reference: dict, before: dict, frames: int, updates: int = 1,
                       momentum: float = 0.0) -> float:
    """Assert that the weights ``got`` equal ``reference`` up to float32 rounding, both the
    same update(s) from ``before`` (name -> tensor mappings) computed through other kernel
    paths (split or merged batches, other padding, other ranks). Returns the largest
    difference as a fraction of its bound (so a test can show the bound catches real errors).

    The bound, per tensor: each gradient entry is a float32 sum over ~``frames`` frames, so
    summing it in another order moves it by at most frames * EPS32 of its terms
    (sqrt(frames) * EPS32 typically: for 200 frames the bound is ~14x over the typical
    error); an update is lr x gradient, so that fraction of the update's own size
    max|reference - before| bounds each update's difference. With ``updates`` and SGD
    ``momentum`` an update's difference is carried into later ones (<= 1/(1 - momentum) of
    it each); plus one rounding of the value itself, 2 EPS32 |value|. A real error of the
    update (a wrong normalisation, a dropped or doubled utterance) is a sizeable fraction of
    the update itself, ~1e3-1e4 times this bound."""
    assert sorted(got) == sorted(reference) == sorted(before)
    worst = 0.0
    carried = updates / (1.0 - momentum)
    for name, ref in reference.items():
        ref = ref.detach()
        moved = (ref - before[name]).abs().max().item()
        bound = carried * frames * EPS32 * moved + 2 * EPS32 * ref.abs().max().item()
        diff = (got[name].detach() - ref).abs().max().item()
        assert diff <= bound, (name, diff, bound)
        worst = max(worst, diff / bound if bound > 0 else 0.0)
    return worst
