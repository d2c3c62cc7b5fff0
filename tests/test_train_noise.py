"""Graves' second phase: Gaussian weight noise for each update's forward/backward, removed
before the update; restart from the best dev weights of a first phase."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from train_utils import assert_same_update, examples, tiny_config, tokenizer, weights

from asr.train import CheckpointError, Trainer
from asr.train.data import make_batch
from asr.train.losses import ctc_losses

TRAIN = examples(8, seed=5)
SGD = ("train.optimizer=sgd", "train.momentum=0.0", "train.lr=0.5", "train.clip_grad_norm=0")


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_update_uses_the_gradient_at_the_noisy_weights_applied_to_the_clean_ones(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(*SGD, "train.weight_noise=0.075"), tmp_path, tokenizer(), TRAIN, [], progress=False)
    clean = _params(trainer.model)
    batch = make_batch(TRAIN[:4])

    # The same noise, drawn by hand, and the gradient at w + n.
    noisy_model = copy.deepcopy(trainer.model)
    generator = trainer.noise.generator(0, torch.device("cpu"))
    with torch.no_grad():
        for param in noisy_model.parameters():
            param.add_(torch.randn(param.shape, generator=generator), alpha=0.075)
    log_probs, lengths = noisy_model(batch.feats, batch.feat_lengths)
    (ctc_losses(log_probs, lengths, batch).sum() / 4).backward()
    names = [name for name, _ in trainer.model.named_parameters()]
    expected = {n: w - 0.5 * p.grad for n, w, p in zip(names, clean, noisy_model.parameters(), strict=True)}
    before = dict(zip(names, clean, strict=True))

    result = trainer.train_step([batch], utterances=4, progress=0.0)
    assert result.updated and trainer.global_step == 1
    # The same batch, but the trainer's own forward/backward and SGD step (its noisy weights
    # may round differently from w + n here): within the summation-order bound of the update.
    frames = int(batch.feat_lengths.sum())
    assert_same_update(weights(trainer.model), expected, before, frames)

    # Without noise the update differs (far outside that bound): the noise entered the gradient.
    plain = Trainer(tiny_config(*SGD), tmp_path / "plain", tokenizer(), TRAIN, [], progress=False)
    plain.train_step([batch], utterances=4, progress=0.0)
    with pytest.raises(AssertionError):
        assert_same_update(weights(plain.model), expected, before, frames)


def test_noise_has_the_configured_spread_and_is_removed_exactly(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config("train.weight_noise=0.075", "model.hidden_size=32"), tmp_path, tokenizer(), TRAIN, [], progress=False)
    clean = _params(trainer.model)
    with trainer.noise.applied(step=7):
        deltas = torch.cat([(p.detach() - c).flatten() for p, c in zip(trainer.model.parameters(), clean, strict=True)])
    assert deltas.numel() > 10_000
    assert abs(deltas.std().item() - 0.075) < 0.003 and abs(deltas.mean().item()) < 0.003
    for param, before in zip(trainer.model.parameters(), clean, strict=True):
        assert torch.equal(param.detach(), before)  # bit-exact, not w + n - n
    # Each update draws new noise; the same update always draws the same.
    with trainer.noise.applied(step=7):
        again = torch.cat([(p.detach() - c).flatten() for p, c in zip(trainer.model.parameters(), clean, strict=True)])
    with trainer.noise.applied(step=8):
        other = torch.cat([(p.detach() - c).flatten() for p, c in zip(trainer.model.parameters(), clean, strict=True)])
    assert torch.equal(again, deltas) and not torch.allclose(other, deltas)


def test_noise_does_not_touch_the_global_random_state(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config("train.weight_noise=0.075"), tmp_path, tokenizer(), TRAIN, [], progress=False)
    state = torch.get_rng_state()
    with trainer.noise.applied(step=0):
        pass
    assert torch.equal(torch.get_rng_state(), state)


def test_phase_two_restarts_from_the_best_dev_weights(tmp_path: Path, caplog) -> None:
    dev = examples(4, seed=6, prefix="d")
    phase1 = Trainer(tiny_config("train.epochs=2"), tmp_path / "phase1", tokenizer(), TRAIN, dev, progress=False)
    phase1.fit(resume=False)
    best = torch.load(tmp_path / "phase1" / "checkpoints" / "best.pt", weights_only=True)

    seen = {}
    config = tiny_config("train.epochs=1", "train.weight_noise=0.075", f"train.init_from={tmp_path / 'phase1'}")
    phase2 = Trainer(config, tmp_path / "phase2", tokenizer(), TRAIN, dev, progress=False)
    phase2.step_callbacks.append(lambda t, r: seen.setdefault("first", None))
    original = phase2.train_step

    def spy(*args, **kwargs):
        if "weights" not in seen:
            seen["weights"] = {k: v.clone() for k, v in phase2.model.state_dict().items()}
        return original(*args, **kwargs)

    phase2.train_step = spy
    caplog.clear()  # phase 1's records (its CMVN line) may already be captured
    with caplog.at_level("INFO", logger="asr.train"):
        phase2.fit(resume=False)
    for key, value in best.items():  # weights and CMVN statistics of phase 1's best epoch
        assert torch.equal(seen["weights"][key], value), key
    assert "initial weights from" in caplog.text and "global CMVN" not in caplog.text


def test_init_from_a_different_model_is_a_one_line_error(tmp_path: Path) -> None:
    phase1 = Trainer(tiny_config("train.epochs=1"), tmp_path / "phase1", tokenizer(), TRAIN, [], progress=False)
    phase1.fit(resume=False)
    bigger = Trainer(tiny_config("model.hidden_size=8"), tmp_path / "p2", tokenizer(), TRAIN, [], progress=False)
    with pytest.raises(CheckpointError, match="best.pt: weights do not fit this model") as info:
        bigger.init_weights(tmp_path / "phase1")
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="no model.pt or checkpoints/best.pt"):
        bigger.init_weights(tmp_path)
