"""asr.modeldir and asr.store: self-describing model directories and the named model store."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from asr import store
from asr.config import load_config
from asr.errors import ModelError
from asr.model import build_model
from asr.modeldir import FORMAT_VERSION, is_model_dir, load_model_dir, save_model_dir
from asr.text import Tokenizer

TINY = [
    "features.sample_rate=8000",
    "features.n_mels=10",
    "model.num_layers=2",
    "model.hidden_size=8",
    "model.frame_stack=2",
]


def make_model_dir(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = load_config(overrides=TINY)
    tokenizer = Tokenizer.build(["yes no"])
    model = build_model(config.model, config.features, len(tokenizer))
    model.normalizer.set_stats(torch.linspace(-1, 1, 10), torch.linspace(0.5, 1.5, 10))
    return save_model_dir(path, model.eval(), config, tokenizer)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model_dir(tmp_path / "exported")


def test_save_then_load_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = load_config(overrides=TINY)
    tokenizer = Tokenizer.build(["yes no"])
    model = build_model(config.model, config.features, len(tokenizer)).eval()
    model.normalizer.set_stats(torch.linspace(-1, 1, 10), torch.linspace(0.5, 1.5, 10))
    path = save_model_dir(tmp_path / "m", model, config, tokenizer)
    assert sorted(p.name for p in path.iterdir()) == ["config.yaml", "model.pt", "tokens.txt"]

    loaded = load_model_dir(path)
    assert loaded.config == config
    assert loaded.tokenizer.tokens == tokenizer.tokens
    assert not loaded.model.training
    assert torch.equal(loaded.model.normalizer.mean, torch.linspace(-1, 1, 10))
    feats = torch.randn(2, 9, 10)
    lengths = torch.tensor([9, 5])
    with torch.no_grad():
        expected, expected_lengths = model(feats, lengths)
        actual, actual_lengths = loaded.model(feats, lengths)
    assert torch.equal(actual, expected)
    assert torch.equal(actual_lengths, expected_lengths)
    meta = yaml.safe_load((path / "config.yaml").read_text())["asr"]
    assert meta["format_version"] == FORMAT_VERSION and meta["num_tokens"] == len(tokenizer)


@pytest.mark.parametrize("missing", ["model.pt", "config.yaml", "tokens.txt"])
def test_missing_file(model_dir: Path, missing: str) -> None:
    (model_dir / missing).unlink()
    assert not is_model_dir(model_dir)
    with pytest.raises(ModelError, match=f"missing {missing}"):
        load_model_dir(model_dir)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model directory not found"):
        load_model_dir(tmp_path / "nope")


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_wrong_format_version(model_dir: Path, version) -> None:
    path = model_dir / "config.yaml"
    data = yaml.safe_load(path.read_text())
    if version is None:
        del data["asr"]
    else:
        data["asr"]["format_version"] = version
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError, match=f"model format version {version!r}"):
        load_model_dir(model_dir)


def test_corrupt_files(model_dir: Path) -> None:
    (model_dir / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="model.pt: cannot load weights"):
        load_model_dir(model_dir)


def test_weights_of_another_shape(model_dir: Path) -> None:
    data = yaml.safe_load((model_dir / "config.yaml").read_text())
    data["model"]["hidden_size"] = 16
    (model_dir / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError, match="cannot load weights"):
        load_model_dir(model_dir)


def test_bad_config_is_model_error(model_dir: Path) -> None:
    data = yaml.safe_load((model_dir / "config.yaml").read_text())
    data["model"]["hidden_units"] = 3
    (model_dir / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError, match="unknown key 'model.hidden_units'"):
        load_model_dir(model_dir)
    (model_dir / "config.yaml").write_text("model: [\n")
    with pytest.raises(ModelError, match="config.yaml: unreadable"):
        load_model_dir(model_dir)


@pytest.fixture
def empty_store(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "store"
    monkeypatch.setenv("ASR_MODEL_DIR", str(root))
    monkeypatch.delenv("ASR_MODEL", raising=False)
    return root


def test_store_location(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ASR_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert store.store_dir() == tmp_path / "cache" / "asr" / "models"
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "elsewhere"))
    assert store.store_dir() == tmp_path / "elsewhere"


def test_nothing_installed(empty_store: Path) -> None:
    assert store.list_models() == []
    assert store.default_model() is None
    with pytest.raises(ModelError, match="no model given and no default model installed") as info:
        store.resolve()
    assert str(empty_store) in str(info.value) and "--model" in str(info.value)
    with pytest.raises(ModelError, match=r"model 'digits' is neither.*\(installed: none\)"):
        store.resolve("digits")


def test_install_list_default_resolve(empty_store: Path, model_dir: Path) -> None:
    target = store.install(model_dir, "digits")
    assert target == empty_store / "digits"
    assert is_model_dir(target)
    assert store.list_models() == ["digits"]
    assert store.default_model() is None
    assert store.resolve("digits") == target
    store.install(model_dir, "yesno", make_default=True)
    assert store.list_models() == ["digits", "yesno"]
    assert store.default_model() == "yesno"
    assert (empty_store / "DEFAULT").read_text() == "yesno\n"
    assert store.resolve() == empty_store / "yesno"
    assert store.resolve(str(model_dir)) == model_dir  # a directory wins over the store
    # No staging leftovers.
    assert sorted(p.name for p in empty_store.iterdir()) == ["DEFAULT", "digits", "yesno"]


def test_env_precedence(empty_store: Path, model_dir: Path, monkeypatch) -> None:
    store.install(model_dir, "a", make_default=True)
    store.install(model_dir, "b")
    assert store.resolve() == empty_store / "a"
    monkeypatch.setenv("ASR_MODEL", "b")
    assert store.resolve() == empty_store / "b"  # $ASR_MODEL beats the default
    assert store.resolve("a") == empty_store / "a"  # an explicit argument beats $ASR_MODEL
    monkeypatch.setenv("ASR_MODEL", "c")
    with pytest.raises(ModelError, match=r"model 'c' is neither.*\(installed: a, b\)"):
        store.resolve()


def test_reinstall_replaces(empty_store: Path, tmp_path: Path) -> None:
    first = make_model_dir(tmp_path / "first", seed=0)
    second = make_model_dir(tmp_path / "second", seed=1)
    store.install(first, "m")
    store.install(second, "m")
    assert (empty_store / "m" / "model.pt").read_bytes() == (second / "model.pt").read_bytes()
    assert store.list_models() == ["m"]
    loaded = load_model_dir(store.resolve("m"))
    reference = load_model_dir(second)
    for key, value in reference.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)


def test_install_errors(empty_store: Path, model_dir: Path, tmp_path: Path) -> None:
    for name in ["", "../x", "a b", ".hidden", "a/b"]:
        with pytest.raises(ModelError, match="invalid model name"):
            store.install(model_dir, name)
    with pytest.raises(ModelError, match="not a model directory"):
        store.install(tmp_path, "x")
    (tmp_path / "notmodel").mkdir()
    with pytest.raises(ModelError, match="not a model directory"):
        store.resolve(str(tmp_path / "notmodel"))
