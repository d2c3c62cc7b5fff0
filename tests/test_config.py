"""asr.config: YAML merging, typed overrides, and errors that name their source."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from asr.config import ExperimentConfig, config_from_dict, load_config, parse_override, save_config
from asr.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = load_config()
    assert config == ExperimentConfig()
    assert (config.model.num_layers, config.model.hidden_size, config.model.bidirectional) == (
        3,
        250,
        True,
    )
    assert config.features.n_mels == 80 and config.features.n_fft is None


def test_merge_order_files_then_overrides(tmp_path: Path) -> None:
    first = write(
        tmp_path / "a.yaml",
        "model:\n  hidden_size: 100\n  num_layers: 2\nfeatures:\n  n_mels: 40\n",
    )
    second = write(tmp_path / "b.yaml", "model:\n  hidden_size: 200\ntrain:\n  lr: 0.01\n")
    config = load_config([first, second])
    assert config.model.hidden_size == 200  # later file wins
    assert config.model.num_layers == 2  # earlier file kept where not overridden
    assert config.features.n_mels == 40
    assert config.train.lr == 0.01
    config = load_config([first, second], ["model.hidden_size=300", "model.hidden_size=16"])
    assert config.model.hidden_size == 16  # overrides after files, in order
    assert load_config([second, first]).model.hidden_size == 100


def test_overrides_are_typed() -> None:
    config = load_config(
        overrides=[
            "train.lr=0.5",
            "model.bidirectional=false",
            "features.n_fft=512",
            "features.f_max=null",
            "features.mel_norm=null",
            "features.mel_scale=htk",
            "train.device=cuda:1",
            "model.init=uniform",
        ]
    )
    assert config.train.lr == 0.5 and isinstance(config.train.lr, float)
    assert config.model.bidirectional is False
    assert config.features.n_fft == 512
    assert config.features.f_max is None and config.features.mel_norm is None
    assert config.features.mel_scale == "htk"
    assert config.train.device == "cuda:1"
    assert config.model.init == "uniform"


def test_int_coerced_to_float(tmp_path: Path) -> None:
    config = load_config(
        [write(tmp_path / "c.yaml", "features:\n  f_max: 4000\ntrain:\n  lr: 1\n")]
    )
    assert config.features.f_max == 4000.0 and isinstance(config.features.f_max, float)
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float)
    assert isinstance(load_config(overrides=["model.dropout=0"]).model.dropout, float)


def test_unknown_section_names_file(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "modle:\n  hidden_size: 3\n")
    with pytest.raises(ConfigError, match="unknown section 'modle'") as info:
        load_config([path])
    assert str(path) in str(info.value)


def test_unknown_key_names_file(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "model:\n  hidden_sise: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'model\.hidden_sise'") as info:
        load_config([path])
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError, match="override 'train.epoch=3'"):
        load_config(overrides=["train.epoch=3"])


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("model:\n  hidden_size: abc\n", "expected an integer"),
        ("model:\n  hidden_size: true\n", "expected an integer"),  # bool is not an int here
        ("model:\n  hidden_size: 2.5\n", "expected an integer"),  # no float -> int truncation
        ("model:\n  bidirectional: 1\n", "expected true or false"),
        ("train:\n  lr: fast\n", "expected a number"),
        ("train:\n  device: 0\n", "expected a string"),
        ("features:\n  mel_scale: bark\n", "not one of"),
        ("features:\n  n_fft: 25.5\n", "not a valid value"),
        ("model: 3\n", "must be a mapping"),
        ("- a\n- b\n", "expected a mapping of sections"),
    ],
)
def test_wrong_types_name_the_file(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = write(tmp_path / "typed.yaml", yaml_text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config([path])
    assert str(path) in str(info.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_config([tmp_path / "missing.yaml"])
    assert "missing.yaml" in str(info.value)
    bad = write(tmp_path / "broken.yaml", "model: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        load_config([bad])
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    # An empty file or an empty section changes nothing.
    empty = write(tmp_path / "empty.yaml", "")
    section = write(tmp_path / "section.yaml", "model:\n")
    assert load_config([empty, section]) == ExperimentConfig()


@pytest.mark.parametrize(
    "override", ["hidden_size=3", "model.hidden_size", "a.b.c=1", ".x=1", "model.=1"]
)
def test_malformed_override(override: str) -> None:
    with pytest.raises(ConfigError, match="expected section.key=value"):
        parse_override(override)


def test_parse_override_values() -> None:
    assert parse_override("model.hidden_size=128") == {"model": {"hidden_size": 128}}
    assert parse_override("train.device=") == {"train": {"device": None}}
    assert parse_override("train.device=cpu") == {"train": {"device": "cpu"}}


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    config = load_config(overrides=["model.hidden_size=32", "features.f_max=3800", "train.lr=0.25"])
    save_config(config, tmp_path / "out" / "config.yaml", extra={"note": {"x": 1}})
    data = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert data["note"] == {"x": 1}
    del data["note"]
    assert config_from_dict(data, "saved") == config
    with pytest.raises(ConfigError, match="saved: unknown section 'note'"):
        config_from_dict({"note": {}}, "saved")


def test_repository_configs_load() -> None:
    """Every shipped config under conf/ is valid."""
    root = Path(__file__).resolve().parents[1] / "conf"
    paths = sorted(root.rglob("*.yaml"))
    if not paths:
        pytest.skip("no conf/ directory")
    for path in paths:
        load_config([path])
    config = load_config([root / "model" / "ctc_3l_250h.yaml"])
    assert (config.model.num_layers, config.model.hidden_size) == (3, 250)
