"""Ensembles of models (asr.ensemble): made, installed, decoded as the mean posterior, refused
when their members do not fit together."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asr.cli.main import main as asr_main
from asr.ensemble import ENSEMBLE_FILE, combine_log_probs, load_members, make_ensemble
from asr.errors import ModelError
from asr.export import ExportError, export_model
from asr.inference import load_model
from tests.transcribe_utils import make_model_dir, one_thread  # noqa: F401 - fixture


@pytest.fixture
def members(tmp_path: Path) -> list[Path]:
    return [make_model_dir(tmp_path / f"m{seed}", seed=seed) for seed in (0, 1)]


def signals() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (4000, 6500)]


def test_mean_posterior_of_two_models(members, tmp_path: Path, one_thread) -> None:  # noqa: F811
    ensemble = make_ensemble(tmp_path / "ens", members)
    spec = yaml.safe_load((ensemble / ENSEMBLE_FILE).read_text())
    assert [m["weights"] for m in spec["members"]] == ["model.pt", "member-2.pt"]
    single = [load_model(m, device="cpu", model_decoder=False) for m in members]
    combined = load_model(ensemble, device="cpu", model_decoder=False)
    (a, la), (b, lb) = (r.log_probs(signals()) for r in single)
    out, lengths = combined.log_probs(signals())
    assert torch.equal(la, lb) and torch.equal(lengths, la)
    expected = torch.log((a.exp() + b.exp()) / 2)
    # float32 log/exp round trip of probabilities near 1: a few ulps of 1.
    assert torch.allclose(out, expected, atol=1e-5, rtol=0)
    # Still a distribution per frame, and not one of the members.
    assert torch.allclose(out.exp().sum(-1), torch.ones(out.shape[:2]), atol=1e-5)
    assert not torch.allclose(out, a, atol=1e-3)
    text = combined.transcribe(signals()[1]).text
    assert isinstance(text, str)


def test_combine_crops_to_common_frames() -> None:
    a = torch.log_softmax(torch.randn(2, 7, 5), -1)
    b = torch.log_softmax(torch.randn(2, 6, 5), -1)
    out, lengths = combine_log_probs([(a, torch.tensor([7, 4])), (b, torch.tensor([6, 4]))])
    assert out.shape == (2, 6, 5)
    assert lengths.tolist() == [6, 4]
    manual = torch.logsumexp(torch.stack([a[:, :6], b]), 0) - math.log(2)
    assert torch.equal(out, manual)


def test_members_may_differ_in_cmvn(tmp_path: Path) -> None:
    first = make_model_dir(tmp_path / "g", seed=0)
    other = make_model_dir(tmp_path / "u", "features.cmvn=utterance", seed=1)
    members = load_members(make_ensemble(tmp_path / "ens", [first, other]))
    assert [m.config.features.cmvn for m in members] == ["global", "utterance"]


def test_other_units_or_frame_rate_are_refused(tmp_path: Path, members) -> None:
    stacked = make_model_dir(tmp_path / "fs2", "model.frame_stack=2")
    with pytest.raises(ModelError, match="frame every"):
        make_ensemble(tmp_path / "e1", [members[0], stacked])
    units = make_model_dir(tmp_path / "units")
    (units / "tokens.txt").write_text((units / "tokens.txt").read_text().replace("z", "Z"))
    with pytest.raises(ModelError, match="same output units"):
        make_ensemble(tmp_path / "e2", [members[0], units])
    with pytest.raises(ModelError, match="two or more"):
        make_ensemble(tmp_path / "e3", members[:1])


def test_broken_ensemble_names_the_file(tmp_path: Path, members) -> None:
    ensemble = make_ensemble(tmp_path / "ens", members)
    (ensemble / "member-2.pt").unlink()
    with pytest.raises(ModelError, match=r"member-2\.pt: missing"):
        load_model(ensemble, device="cpu")
    (ensemble / ENSEMBLE_FILE).write_text("members: [{config: ../x.yaml, weights: model.pt}]\n")
    with pytest.raises(ModelError, match="not a path"):
        load_members(ensemble)
    (ensemble / ENSEMBLE_FILE).write_text("members: 3\n")
    with pytest.raises(ModelError, match="expected 'members:'"):
        load_members(ensemble)


def test_cli_makes_installs_lists_and_refuses_export(members, tmp_path: Path, monkeypatch,
                                                     capsys) -> None:
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))
    out = tmp_path / "ens"
    assert asr_main(["models", "ensemble", str(members[0]), str(members[1]), "--out", str(out)]) == 0
    assert asr_main(["models", "install", str(out), "--name", "both"]) == 0
    capsys.readouterr()
    assert asr_main(["models", "list"]) == 0
    assert "ensemble of 2 models" in capsys.readouterr().out
    installed = tmp_path / "store" / "both"
    assert len(load_members(installed)) == 2
    with pytest.raises(ExportError, match="ensemble"):
        export_model(installed, "torchscript")
    # A copy without its ensemble.yaml is the first member alone.
    lone = tmp_path / "lone"
    shutil.copytree(installed, lone)
    (lone / ENSEMBLE_FILE).unlink()
    assert len(load_members(lone)) == 1
