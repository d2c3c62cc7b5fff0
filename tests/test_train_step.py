"""One training update: loss normalisation and gradient accumulation, bf16 autocast, skipped
batches, learning-rate schedules, features computed on the fly, torch.compile."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import requires_cpu_bf16_lstm
from fp_bounds import logmel_reference
from train_utils import (
    EPS32,
    FEAT_DIM,
    assert_same_update,
    examples,
    tiny_config,
    tokenizer,
    weights,
)

from asr.augment import perturbed_length
from asr.config import TrainConfig
from asr.data import Utterance, read_data_dir, write_data_dir
from asr.data.dataset import Example, load_examples
from asr.errors import ConfigError
from asr.features import build_frontend
from asr.train import Trainer
from asr.train.data import load_waveforms, make_batch
from asr.train.reader import BatchKey, read_batches
from asr.train.schedule import step_lr

TRAIN = examples(10, seed=3)
SGD = ("train.optimizer=sgd", "train.momentum=0.0", "train.lr=0.5", "train.clip_grad_norm=0")


def _trainer(tmp_path: Path, *overrides: str, data=TRAIN, dev=()) -> Trainer:
    return Trainer(tiny_config(*SGD, *overrides), tmp_path, tokenizer(), data, list(dev), progress=False)


def test_accumulated_batches_equal_one_batch_of_their_union(tmp_path: Path) -> None:
    """Two batches of 3 and 5 utterances accumulated into one update equal one update on all
    8: the summed loss is divided by the utterances of the whole update."""
    first, second = make_batch(TRAIN[:3]), make_batch(TRAIN[3:8])
    accumulated = _trainer(tmp_path / "a", "train.accum_grad=2")
    union = _trainer(tmp_path / "b")
    before = weights(union.model)
    res_a = accumulated.train_step([first, second], utterances=8, progress=0.0)
    res_b = union.train_step([make_batch(TRAIN[:8])], utterances=8, progress=0.0)
    assert res_a.updated and res_b.updated and accumulated.global_step == union.global_step == 1
    assert res_a.utterances == res_b.utterances == 8
    frames = sum(e.feats.shape[0] for e in TRAIN[:8])
    assert res_a.frames == res_b.frames == frames
    # Other batch shapes, so float32 sums in another order: the loss (a sum over all frames
    # of same-sign terms) agrees to frames * EPS32 relative, the weights to the bound of
    # assert_same_update (frames * EPS32 of the update's size).
    assert math.isclose(res_a.loss, res_b.loss, rel_tol=frames * EPS32)
    assert_same_update(weights(accumulated.model), weights(union.model), before, frames)
    moved = max((p - before[n]).abs().max().item() for n, p in union.model.named_parameters())
    assert moved > 1e-3  # the update was not trivially zero
    # Normalising each batch on its own would have given a different update, far outside the bound.
    wrong = _trainer(tmp_path / "c")
    wrong.train_step([first], utterances=3, progress=0.0)
    with pytest.raises(AssertionError):
        assert_same_update(weights(wrong.model), weights(union.model), before, frames)


def test_epoch_with_accumulation_makes_one_update_per_two_batches(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "train.accum_grad=2", "train.epochs=1")
    batches = len(trainer.sampler.batches(0))
    trainer.train_epoch()
    assert trainer.global_step == math.ceil(batches / 2)
    assert trainer.totals.utterances == len(TRAIN)


@requires_cpu_bf16_lstm
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
    # 1. The features the trainer computes for a padded batch are the precomputed ones: the
    # batched and lone front ends are each within the float32 bound of the float64 log-mel
    # reference, so within twice it of each other.
    wave_batch = make_batch(waves)
    batch_feats, batch_lengths = on_the_fly._features(wave_batch)
    for i, (wave, example) in enumerate(zip(waves, feats, strict=True)):
        assert int(batch_lengths[i]) == example.feats.shape[0]
        _, tol = logmel_reference(wave.samples.numpy(), 8000, 256, 80, 200, 6)
        diff = (batch_feats[i, : example.feats.shape[0]] - example.feats).abs().double().numpy()
        assert (diff <= 2 * tol).all()
    # 2. Training on them makes the update a precomputed trainer makes on those same features
    # (an update's sensitivity to its inputs is not a rounding bound, so the two links are
    # checked apart: same features -> same update up to the summation-order bound).
    same = [Example(w.utt_id, batch_feats[i, : int(batch_lengths[i])].clone(), w.tokens, w.text,
                    w.speaker, w.duration) for i, w in enumerate(waves)]
    before = weights(precomputed.model)
    a = on_the_fly.train_step([wave_batch], len(waves), 0.0)
    b = precomputed.train_step([make_batch(same)], len(same), 0.0)
    assert a.frames == b.frames == sum(e.feats.shape[0] for e in feats)
    assert math.isclose(a.loss, b.loss, rel_tol=a.frames * EPS32)
    assert_same_update(weights(on_the_fly.model), weights(precomputed.model), before, a.frames)


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
    # Both accumulate in float64 over features that each lie within the float32 log-mel bound
    # of the float64 reference: the means agree to the mean of twice the bound, the stds to
    # its rms (|std(x + d) - std(x)| <= rms(d)), plus their float32 rounding.
    tols = np.concatenate([logmel_reference(w.samples.numpy(), 8000, 256, 80, 200, 6)[1] for w in waves])
    mean_a, mean_b = a.model.normalizer.mean.double(), b.model.normalizer.mean.double()
    std_a, std_b = a.model.normalizer.std.double(), b.model.normalizer.std.double()
    mean_bound = 2 * tols.mean(0) + 2 * EPS32 * mean_b.abs().numpy()
    std_bound = 2 * np.sqrt((tols**2).mean(0)) + 2 * EPS32 * std_b.numpy()
    assert ((mean_a - mean_b).abs().numpy() <= mean_bound).all()
    assert ((std_a - std_b).abs().numpy() <= std_bound).all()


def test_waveform_augmentation_needs_features_on_the_fly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="need train.features_on_the_fly: true"):
        _trainer(tmp_path, "augment.speed_perturb=true")


def test_speed_perturbation_on_the_fly_is_reproducible(tmp_path: Path) -> None:
    data = read_data_dir(_wave_data(tmp_path))
    config = _wave_config("train.features_on_the_fly=true", "augment.speed_perturb=true")
    waves, _ = load_waveforms(data, config.features, tokenizer(), subsampling=2)
    trainer = Trainer(config, tmp_path / "exp", tokenizer(), waves, [], progress=False)
    local = trainer.sampler.batches(0)
    keys = [BatchKey(0, i, tuple(indices)) for i, indices in enumerate(local)]
    first = [trainer.reader[key].batch.waves for key in keys]
    again = [trainer.reader[key].batch.waves for key in reversed(keys)][::-1]
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    # The same batches from 0 (a thread), 1 and 2 DataLoader worker processes.
    for workers in (0, 1, 2):
        loaded = [read.batch.waves for read in read_batches(trainer.reader, keys, workers)]
        assert len(loaded) == len(first) and all(torch.equal(x, y) for x, y in zip(first, loaded, strict=True)), workers
    plain = [make_batch([waves[i] for i in indices]).waves for indices in local]
    assert any(x.shape != y.shape for x, y in zip(first, plain, strict=True))  # lengths changed


def test_the_reader_plays_each_utterance_at_the_factor_the_sampler_chose(tmp_path: Path) -> None:
    data = read_data_dir(_wave_data(tmp_path))
    config = _wave_config("train.features_on_the_fly=true", "augment.speed_perturb=true")
    waves, _ = load_waveforms(data, config.features, tokenizer(), subsampling=2)
    trainer = Trainer(config, tmp_path / "exp", tokenizer(), waves, [], progress=False)
    index = {w.utt_id: i for i, w in enumerate(waves)}
    for epoch in (0, 1):
        speeds = trainer.sampler.speeds(epoch)
        assert speeds is not None and len(speeds) == len(waves)
        played = {}
        for _, _, batches in trainer.data.updates(epoch, 0):
            for batch in batches:
                played.update(zip(batch.utt_ids, batch.wave_lengths.tolist(), strict=True))
        assert sorted(played) == sorted(index)
        for utt, length in played.items():
            i = index[utt]
            assert abs(length - perturbed_length(len(waves[i].samples), speeds[i])) <= 1, (epoch, utt)


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
    before = weights(eager.model)
    frames = int(batch.feat_lengths.sum())
    for _ in range(2):
        ra = eager.train_step([batch], 4, 0.0)
        rb = compiled.train_step([batch], 4, 0.0)
        # Fused kernels round in another order: a sum over ~100 frames is good to
        # frames * EPS32 ~ 6e-6 relative, and the second step starts from weights that differ
        # by the update bound below; 1e-4 leaves >10x.
        assert math.isclose(ra.loss, rb.loss, rel_tol=1e-4)
    assert_same_update(weights(compiled.model), weights(eager.model), before, frames, updates=2)
