"""A trained model as one self-describing directory.

    model.pt      weights (state dict, loaded with ``torch.load(weights_only=True)``), including
                  the global CMVN statistics as buffers
    config.yaml   the resolved experiment config, plus an ``asr`` block: format version,
                  toolkit version, number of tokens
    tokens.txt    the output units, ``<symbol> <id>``; 0 is the CTC blank
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from asr import __version__
from asr.config import ExperimentConfig, config_from_dict, save_config
from asr.errors import ConfigError, ModelError
from asr.model import AcousticModel, build_model
from asr.text import Tokenizer
from asr.utils import atomic_write

FORMAT_VERSION = 1
REQUIRED_FILES = ("model.pt", "config.yaml", "tokens.txt")


@dataclass
class LoadedModel:
    path: Path
    config: ExperimentConfig
    tokenizer: Tokenizer
    model: AcousticModel


def save_state_dict(state: dict, path: str | Path) -> None:
    def write(handle: io.BufferedIOBase) -> None:
        torch.save(state, handle)

    atomic_write(path, write)


def save_model_dir(
    path: str | Path, model: AcousticModel, config: ExperimentConfig, tokenizer: Tokenizer
) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_state_dict(state, path / "model.pt")
    tokenizer.save(path / "tokens.txt")
    meta = {"asr": {"format_version": FORMAT_VERSION, "version": __version__, "num_tokens": len(tokenizer)}}
    save_config(config, path / "config.yaml", extra=meta)
    return path


def is_model_dir(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and all((path / name).is_file() for name in REQUIRED_FILES)


def load_model_dir(path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """The model of a model directory (of an ensemble directory, :mod:`asr.ensemble`, its first
    member; :func:`asr.ensemble.load_members` loads them all)."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model directory not found")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ModelError(
            f"{path}: not a model directory (missing {', '.join(missing)}); "
            "a model directory is what `asr train` exports"
        )
    return load_member(path, "config.yaml", "model.pt", device)


def load_member(path: Path, config_name: str, weights_name: str,
                device: torch.device | str = "cpu") -> LoadedModel:
    """The network of ``path/config_name`` with the weights of ``path/weights_name`` and the
    directory's ``tokens.txt``; every problem is a :class:`ModelError` naming the file."""
    config_file, weights_file = path / config_name, path / weights_name
    for file in (config_file, weights_file):
        if not file.is_file():
            raise ModelError(f"{file}: missing from the model directory")
    try:
        data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{config_file}: unreadable ({exc})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ModelError(f"{config_file}: expected a mapping")
    meta = data.pop("asr", None) or {}
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{path}: model format version {version!r}, this asr {__version__} reads version "
            f"{FORMAT_VERSION}; retrain or use a matching asr release"
        )
    try:
        config = config_from_dict(data, str(config_file))
    except ConfigError as exc:
        raise ModelError(str(exc)) from None
    tokenizer = Tokenizer.load(path / "tokens.txt", config.tokenizer.type)
    model = build_model(config.model, config.features, len(tokenizer))
    try:
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any unpickling/shape failure means a bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # some have no message
        raise ModelError(f"{weights_file}: cannot load weights ({first})") from None
    model.to(device).eval()
    return LoadedModel(path, config, tokenizer, model)
