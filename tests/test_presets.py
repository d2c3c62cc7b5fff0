"""Presets by name: shipped inside the package, resolved from any directory, a real file wins,
one-line errors with the nearest names, and ``asr train --list-presets``."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr import presets
from asr.cli import main as asr_main
from asr.config import load_config
from asr.errors import ConfigError
from asr.presets import list_presets, resolve_config

REPO_CONF = Path(__file__).resolve().parents[1] / "conf"


def test_the_package_holds_every_preset_of_the_repository() -> None:
    """asr/conf is what the wheel ships; it must be the repository's conf/ presets, all of them."""
    for group, names in list_presets().items():
        assert names == sorted(p.stem for p in (REPO_CONF / group).glob("*.yaml")), group
        assert names, group
    assert (presets.preset_dir() / "model" / "small_cpu.yaml").read_bytes() == (
        REPO_CONF / "model" / "small_cpu.yaml").read_bytes()


@pytest.mark.parametrize("spec", ["model/ctc_5l_250h", "model/ctc_5l_250h.yaml",
                                  "conf/model/ctc_5l_250h.yaml", "ctc_5l_250h"])
def test_a_name_resolves_from_any_directory(spec: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = resolve_config(spec)
    assert path == presets.preset_dir() / "model" / "ctc_5l_250h.yaml"
    assert load_config([spec]).model.num_layers == 5


def test_every_preset_loads() -> None:
    for group, names in list_presets().items():
        for name in names:
            load_config([f"{group}/{name}"])


def test_a_real_file_wins_over_the_preset_of_the_same_name(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "small_cpu.yaml").write_text("model:\n  hidden_size: 7\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_config("model/small_cpu.yaml") == Path("model/small_cpu.yaml")
    assert load_config(["model/small_cpu.yaml"]).model.hidden_size == 7
    # Without the extension it is no file here, so the preset answers.
    assert load_config(["model/small_cpu"]).model.hidden_size == 64


@pytest.mark.parametrize("spec, expected", [
    ("model/ctc_5l_25h", "nearest: model/ctc_5l_250h"),
    ("ctc_3l_25h", "nearest: model/ctc_3l_250h"),
    ("model/zzz", "model presets: model/blstm_stack3_ln,"),
    ("nonsense", "presets: features/fbank80_16k,"),
])
def test_an_unknown_name_is_one_line_with_the_nearest(spec: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(spec)
    message = str(info.value)
    assert message.startswith(f"{spec}: no such config file or preset") and expected in message
    assert "\n" not in message and "--list-presets" in message


def test_a_missing_path_says_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found") as info:
        resolve_config(tmp_path / "exp" / "config.yaml")
    assert str(tmp_path) in str(info.value)


def test_a_name_in_two_groups_asks_for_the_group(tmp_path: Path, monkeypatch) -> None:
    for group in ("model", "train"):
        (tmp_path / group).mkdir()
        (tmp_path / group / "same.yaml").write_text(f"{group}:\n")
    (tmp_path / "features").mkdir()
    monkeypatch.setattr(presets, "preset_dir", lambda: tmp_path)
    with pytest.raises(ConfigError, match=r"names several presets \(model/same, train/same\)"):
        resolve_config("same")
    assert resolve_config("train/same") == tmp_path / "train" / "same.yaml"


def test_no_presets_installed_says_reinstall(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(presets, "preset_dir", lambda: tmp_path)
    with pytest.raises(ConfigError, match=r"no presets are installed in .* \(reinstall asr\)"):
        resolve_config("model/small_cpu")


def test_train_cli_takes_a_name_and_reports_a_wrong_one(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert asr_main.main(["train", "--config", "model/ctc_3l_250h", "--print-params",
                          "--feat-dim", "123"]) == 0
    assert "parameters: 3,789,062" in capsys.readouterr().out
    assert asr_main.main(["train", "--config", "model/ctc_3l_25h", "--print-params"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("asr train: error: model/ctc_3l_25h: no such config file or preset")
    assert "nearest: model/ctc_3l_250h" in err and len(err.splitlines()) == 1


def test_list_presets_groups_and_counts(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert asr_main.main(["train", "--list-presets"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    headers = [line for line in lines if not line.startswith(" ") and line.endswith(":")]
    assert [h.split(":")[0].split(";")[0] for h in headers] == ["features", "model", "train"]
    assert "model; parameters with 123 inputs and 62 outputs:" in lines
    ctc = next(line for line in lines if line.strip().startswith("model/ctc_3l_250h "))
    assert "3,789,062" in ctc and "Graves" in ctc
    listed = {line.split()[0] for line in lines if line.startswith("  ")}
    assert listed == {f"{g}/{n}" for g, ns in list_presets().items() for n in ns}
    # Other shapes on request.
    assert asr_main.main(["train", "--list-presets", "--feat-dim", "80", "--num-tokens", "30"]) == 0
    assert "parameters with 80 inputs and 30 outputs" in capsys.readouterr().out
