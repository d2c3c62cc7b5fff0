"""The YAML presets shipped inside the package (``asr/conf/{features,model,train}/*.yaml``).

``--config`` takes a file or a preset name: ``model/ctc_5l_250h`` (``.yaml`` and a leading
``conf/`` optional; a bare ``ctc_5l_250h`` when only one group has it). A file that exists
always wins, so a recipe's own ``conf/train.yaml`` is never shadowed by a preset. This module
imports neither torch nor the config module, so that resolving a name stays cheap.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from asr.errors import ConfigError

GROUPS = ("features", "model", "train")


def preset_dir() -> Path:
    """Where the presets are: ``conf/`` inside the installed package."""
    return Path(__file__).resolve().parent / "conf"


def list_presets() -> dict[str, list[str]]:
    """Preset names per group, e.g. ``{"model": ["ctc_1l_250h", ...], ...}``."""
    root = preset_dir()
    return {group: sorted(p.stem for p in (root / group).glob("*.yaml")) for group in GROUPS}


def preset_path(group: str, name: str) -> Path:
    """The file of one preset (it may not exist)."""
    return preset_dir() / group / f"{name}.yaml"


def describe(path: Path) -> str:
    """The first line of a preset's leading comment, its one-line description."""
    try:
        first = path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return ""
    return first.lstrip("#").strip() if first.startswith("#") else ""


def _candidates(spec: str) -> list[tuple[str, str]]:
    """(group, name) pairs that ``spec`` may name, most specific first."""
    text = spec.strip().replace("\\", "/")
    text = text.removeprefix("./").removeprefix("conf/")
    text = text.removesuffix(".yaml").removesuffix(".yml")
    group, sep, name = text.rpartition("/")
    if sep:
        return [(group, name)] if group in GROUPS and name else []
    return [(g, text) for g in GROUPS]


def resolve_config(spec: str | Path) -> Path:
    """A ``--config`` argument as a file: the path itself when it exists, else the preset it
    names. Raises :class:`ConfigError` (one line, with the nearest names) when it is neither."""
    path = Path(spec)
    if path.is_file():
        return path
    found = [preset_path(g, n) for g, n in _candidates(str(spec)) if preset_path(g, n).is_file()]
    if len(found) == 1:
        return found[0]
    names = [f"{g}/{n}" for g, ns in list_presets().items() for n in ns]
    if len(found) > 1:
        which = ", ".join(f"{p.parent.name}/{p.stem}" for p in found)
        raise ConfigError(f"{spec}: names several presets ({which}); give the group, e.g. "
                          f"--config {found[0].parent.name}/{found[0].stem}")
    if not names:
        raise ConfigError(f"{spec}: config file not found, and no presets are installed in "
                          f"{preset_dir()} (reinstall asr)")
    if not _candidates(str(spec)):  # a path, not a name: no list of look-alike names
        raise ConfigError(f"{spec}: config file not found (nor a preset: those are named "
                          "GROUP/NAME, e.g. model/ctc_5l_250h; `asr train --list-presets`)")
    raise ConfigError(f"{spec}: no such config file or preset ({_nearest(str(spec), names)}; "
                      "`asr train --list-presets` lists them all)")


def _nearest(spec: str, names: list[str]) -> str:
    """'nearest: a, b' for a misspelt name, else every preset name."""
    candidates = _candidates(spec)
    stems: dict[str, list[str]] = {}
    for full in names:
        stems.setdefault(full.rpartition("/")[2], []).append(full)
    if len(candidates) == 1:  # GROUP/NAME: the nearest, else the group's names
        near = difflib.get_close_matches("/".join(candidates[0]), names, n=4, cutoff=0.6)
        group = [full for full in names if full.startswith(f"{candidates[0][0]}/")]
        if not near and group:
            return f"{candidates[0][0]} presets: {', '.join(group)}"
    else:  # a bare NAME: any group
        near = [full for stem in difflib.get_close_matches(candidates[0][1], list(stems), n=4,
                                                            cutoff=0.6) for full in stems[stem]]
    return f"nearest: {', '.join(near)}" if near else f"presets: {', '.join(names)}"
