"""The model store: named model directories that ``transcribe`` finds without a path.

Location: ``$ASR_MODEL_DIR``, else ``$XDG_CACHE_HOME/asr/models`` (``~/.cache/asr/models``).
The file ``DEFAULT`` in the store names the model used when none is given.

Resolution order for a model argument: an explicit ``--model`` (a directory, or a name in the
store), then ``$ASR_MODEL``, then the store's default.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from asr.errors import ModelError
from asr.modeldir import is_model_dir
from asr.utils import atomic_write_text

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
HOW_TO_GET_ONE = (
    "train one with `make demo` (installs the 'digits' model) or a recipe's last stage, "
    "or pass --model DIR"
)


def store_dir() -> Path:
    if os.environ.get("ASR_MODEL_DIR"):
        return Path(os.environ["ASR_MODEL_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "asr" / "models"


def list_models() -> list[str]:
    root = store_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if is_model_dir(p))


def default_model() -> str | None:
    path = store_dir() / "DEFAULT"
    if path.is_file():
        name = path.read_text(encoding="utf-8").strip()
        return name or None
    return None


def install(model_dir: str | Path, name: str, make_default: bool = False) -> Path:
    """Copy ``model_dir`` into the store as ``name`` (replacing an older copy atomically)."""
    model_dir = Path(model_dir)
    if not NAME_RE.match(name):
        raise ModelError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-'")
    if not is_model_dir(model_dir):
        raise ModelError(f"{model_dir}: not a model directory (needs model.pt, config.yaml, tokens.txt)")
    root = store_dir()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        for item in model_dir.iterdir():
            if item.is_file():
                shutil.copy2(item, staging / item.name)
            elif item.is_dir() and is_model_dir(item):  # a ROVER model's further systems
                shutil.copytree(item, staging / item.name)
        target = root / name
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old.", dir=root))
            target.rename(old / name)
            staging.rename(target)
            shutil.rmtree(old)
        else:
            staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    if make_default:
        atomic_write_text(root / "DEFAULT", name + "\n")
    return target


def resolve(name_or_path: str | None = None) -> Path:
    """Find a model directory from an argument, ``$ASR_MODEL`` or the store's default."""
    candidate = name_or_path or os.environ.get("ASR_MODEL") or default_model()
    if not candidate:
        raise ModelError(f"no model given and no default model installed in {store_dir()}: {HOW_TO_GET_ONE}")
    path = Path(candidate)
    if path.exists():
        if not is_model_dir(path):
            raise ModelError(f"{path}: not a model directory (needs model.pt, config.yaml, tokens.txt)")
        return path
    if NAME_RE.match(candidate) and is_model_dir(store_dir() / candidate):
        return store_dir() / candidate
    installed = ", ".join(list_models()) or "none"
    raise ModelError(
        f"model '{candidate}' is neither a directory nor a model in {store_dir()} "
        f"(installed: {installed}); {HOW_TO_GET_ONE}"
    )
