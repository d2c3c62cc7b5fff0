"""One training update: loss normalisation and gradient accumulation, bf16 autocast, skipped
batches, learning-rate schedules, features computed on the fly, torch.compile."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from train_utils import FEAT_DIM, examples, tiny_config, tokenizer

from asr.config import TrainConfig
from asr.data import Utterance, read_data_dir, write_data_dir
from asr.data.dataset import Example, load_examples
from asr.errors import ConfigError
from asr.features import build_frontend
from asr.train import Trainer
from asr.train.data import load_waveforms, make_batch
from asr.train.schedule import step_lr

TRAIN = examples(10, seed=3)
SGD = ("train.optimizer=sgd", "train.momentum=0.0", "train.lr=0.5", "train.clip_grad_norm=0")


def _trainer(tmp_path: Path, *overrides: str, data=TRAIN, dev=()) -> Trainer:
    return Trainer(tiny_config(*SGD, *overrides), tmp_path, tokenizer(), data, list(dev), progress=False)


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_accumulated_batches_equal_one_batch_of_their_union(tmp_path: Path) -> None:
    """Two batches of 3 and 5 utterances accumulated into one update equal one update on all
    8: the summed loss is divided by the utterances of the whole update."""
    first, second = make_batch(TRAIN[:3]), make_batch(TRAIN[3:8])
    accumulated = _trainer(tmp_path / "a", "train.accum_grad=2")
    union = _trainer(tmp_path / "b")
    before = [p.detach().clone() for p in union.model.parameters()]
    res_a = accumulated.train_step([first, second], utterances=8, progress=0.0)
    res_b = union.train_step([make_batch(TRAIN[:8])], utterances=8, progress=0.0)
    assert res_a.updated and res_b.updated and accumulated.global_step == union.global_step == 1
    assert res_a.utterances == res_b.utterances == 8
    assert res_a.frames == res_b.frames == sum(e.feats.shape[0] for e in TRAIN[:8])
    assert math.isclose(res_a.loss, res_b.loss, rel_tol=1e-5)
    assert _max_diff(accumulated.model, union.model) < 1e-6
    moved = max((p - q).abs().max().item() for p, q in zip(union.model.parameters(), before, strict=True))
    assert moved > 1e-3  # the update was not trivially zero
    # Normalising each batch on its own would have given a different update.
    wrong = _trainer(tmp_path / "c")
    wrong.train_step([first], utterances=3, progress=0.0)
    assert _max_diff(wrong.model, union.model) > 1e-4


def test_epoch_with_accumulation_makes_one_update_per_two_batches(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "train.accum_grad=2", "train.epochs=1")
    batches = len(trainer.sampler.batches(0))
    trainer.train_epoch()
    assert trainer.global_step == math.ceil(batches / 2)
    assert trainer.totals.utterances == len(TRAIN)


def test_bf16_autocast_trains_close_to_fp32(tmp_path: Path) -> None:
    batch = make_batch(TRAIN[:6])
    fp32 = _trainer(tmp_path / "a")
    bf16 = _trainer(tmp_path / "b", "train.precision=bf16")
    r32 = fp32.train_step([batch], 6, 0.0)
    r16 = bf16.train_step([batch], 6, 0.0)
    assert r16.updated and math.isfinite(r16.loss)
    assert abs(r16.loss - r32.loss) / r32.loss < 0.03
    assert r16.loss != r32.loss  # bf16 really ran
    assert all(torch.isfinite(p).all() for p in bf16.model.parameters())
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # master weights


def test_non_finite_loss_skips_the_batch(tmp_path: Path, caplog) -> None:
    trainer = _trainer(tmp_path)
    bad = Example("nan", torch.full((20, FEAT_DIM), float("nan")), TRAIN[0].tokens, "ab", "s", 0.2)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    result = trainer.train_step([make_batch([bad])], 1, 0.0)
    assert not result.updated and result.skipped == 1 and trainer.global_step == 0
    assert all(torch.equal(p, q) for p, q in zip(trainer.model.parameters(), before, strict=True))
    assert "non-finite loss, batch skipped (nan)" in caplog.text


@pytest.mark.parametrize(
    "schedule, step, progress, expected",
    [
        ("cosine", 0, 0.0, 0.1 * 1 / 4),  # warm-up: (step + 1) / warmup_steps of the peak
        ("cosine", 3, 0.0, 0.1),
        ("cosine", 10, 0.5, 0.1 * (0.02 + 0.98 * 0.5)),
        ("cosine", 10, 1.0, 0.1 * 0.02),
        ("constant", 1, 0.3, 0.1 * 2 / 4),
        ("constant", 9, 0.3, None),  # after warm-up the optimizer keeps its rate
        ("plateau", 2, 0.3, 0.1 * 3 / 4),
        ("plateau", 4, 0.3, None),  # after warm-up the plateau scheduler owns the rate
    ],
)
def test_learning_rate_schedules(schedule, step, progress, expected) -> None:
    tc = TrainConfig(lr=0.1, lr_schedule=schedule, warmup_steps=4, final_lr_ratio=0.02)
    lr = step_lr(tc, step, progress)
    assert lr == pytest.approx(expected) if expected is not None else lr is None


def test_plateau_halves_the_rate_when_dev_loss_stalls(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "train.lr_schedule=plateau", "train.lr_decay_patience=0")
    trainer.scheduler.step(1.0)
    trainer.scheduler.step(2.0)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.25)


# -- features on the fly ---------------------------------------------------------------------

def _wave_data(tmp_path: Path) -> Path:
    """Six tone recordings of 0.3-0.7 s at 8 kHz, one too short for its transcript."""
    utts = []
    rng = np.random.default_rng(0)
    for i in range(6):
        seconds = 0.3 + 0.08 * i
        t = np.arange(int(seconds * 8000)) / 8000
        samples = (0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        path = tmp_path / f"w{i}.wav"
        sf.write(path, samples, 8000)
        text = "ab" * 40 if i == 5 else ["ab", "ba", "abc", "cab", "a"][i]
        utts.append(Utterance(f"w{i}", str(path), text, "w"))
    return write_data_dir(tmp_path / "data", utts).path


def _wave_config(*overrides: str):
    return tiny_config("features.sample_rate=8000", "features.n_mels=6", "features.cmvn=utterance",
                       "model.frame_stack=2", *overrides)


def test_features_on_the_fly_equal_precomputed_features(tmp_path: Path) -> None:
    config = _wave_config("train.features_on_the_fly=true")
    data = read_data_dir(_wave_data(tmp_path))
    tok = tokenizer()
    waves, wave_report = load_waveforms(data, config.features, tok, subsampling=2)
    feats, feat_report = load_examples(data, build_frontend(config.features), tok, subsampling=2)
    assert [w.utt_id for w in waves] == [f.utt_id for f in feats] == [f"w{i}" for i in range(5)]
    assert wave_report.counts == feat_report.counts == {"too short for its transcript": 1}
    assert [w.num_frames for w in waves] == [f.feats.shape[0] for f in feats]

    on_the_fly = Trainer(config, tmp_path / "a", tok, waves, [], progress=False)
    precomputed = Trainer(_wave_config(), tmp_path / "b", tok, feats, [], progress=False)
    assert on_the_fly.frontend is not None and precomputed.frontend is None
    a = on_the_fly.train_step([make_batch(waves)], len(waves), 0.0)
    b = precomputed.train_step([make_batch(feats)], len(feats), 0.0)
    assert a.frames == b.frames
    assert math.isclose(a.loss, b.loss, rel_tol=1e-5)
    assert _max_diff(on_the_fly.model, precomputed.model) < 1e-5


def test_global_cmvn_on_the_fly_matches_precomputed(tmp_path: Path) -> None:
    data = read_data_dir(_wave_data(tmp_path))
    tok = tokenizer()
    config = _wave_config("features.cmvn=global")
    waves, _ = load_waveforms(data, config.features, tok, subsampling=2)
    feats, _ = load_examples(data, build_frontend(config.features), tok, subsampling=2)
    a = Trainer(_wave_config("features.cmvn=global", "train.features_on_the_fly=true"), tmp_path / "a", tok, waves, [], progress=False)
    b = Trainer(config, tmp_path / "b", tok, feats, [], progress=False)
    a._compute_cmvn()
    b._compute_cmvn()
    torch.testing.assert_close(a.model.normalizer.mean, b.model.normalizer.mean, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(a.model.normalizer.std, b.model.normalizer.std, atol=1e-4, rtol=1e-5)


def test_waveform_augmentation_needs_features_on_the_fly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="need train.features_on_the_fly: true"):
        _trainer(tmp_path, "augment.speed_perturb=true")


def test_speed_perturbation_on_the_fly_is_reproducible(tmp_path: Path) -> None:
    data = read_data_dir(_wave_data(tmp_path))
    config = _wave_config("train.features_on_the_fly=true", "augment.speed_perturb=true")
    waves, _ = load_waveforms(data, config.features, tokenizer(), subsampling=2)
    trainer = Trainer(config, tmp_path / "exp", tokenizer(), waves, [], progress=False)
    local = trainer.sampler.batches(0)
    first = [trainer._prepare(local, i)[0].waves for i in range(len(local))]
    again = [trainer._prepare(local, i)[0].waves for i in reversed(range(len(local)))][::-1]
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    plain = [make_batch([waves[i] for i in indices]).waves for indices in local]
    assert any(x.shape != y.shape for x, y in zip(first, plain, strict=True))  # lengths changed


def test_spec_augment_only_in_training(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "augment.spec_augment=true", "augment.freq_mask_width=3")
    assert trainer.augment is not None
    batch = make_batch(TRAIN[:2])
    torch.manual_seed(0)
    trainer.model.train()
    a, _ = trainer.model(batch.feats, batch.feat_lengths, augment=trainer.augment)
    b, _ = trainer.model(batch.feats, batch.feat_lengths)
    assert not torch.allclose(a, b)
    trainer.model.eval()
    c, _ = trainer.model(batch.feats, batch.feat_lengths, augment=trainer.augment)
    d, _ = trainer.model(batch.feats, batch.feat_lengths)
    assert torch.equal(c, d)


@pytest.mark.slow
def test_torch_compile_matches_eager(tmp_path: Path) -> None:
    batch = make_batch(TRAIN[:4])
    eager = _trainer(tmp_path / "a")
    compiled = _trainer(tmp_path / "b", "train.compile=true")
    for _ in range(2):
        ra = eager.train_step([batch], 4, 0.0)
        rb = compiled.train_step([batch], 4, 0.0)
        assert math.isclose(ra.loss, rb.loss, rel_tol=1e-4)
    assert _max_diff(eager.model, compiled.model) < 1e-4
