"""Ensembles: several acoustic models with the same output units decoded as one.

An ensemble directory is a model directory (its ``config.yaml``, ``model.pt`` and
``tokens.txt`` are the first member, so every tool that reads one model still works) plus::

    ensemble.yaml     combine: mean_posterior; members: [{config: ..., weights: ...}, ...]
    member-2.yaml     each further member's resolved config
    member-2.pt       and its weights

:class:`asr.inference.Recognizer` runs every member on the same audio, each with its own front
end (members may differ in features, CMVN, size or seed), and averages their frame posteriors:
``log(mean_m p_m(k | t))``. Members must share the tokens, the sample rate and the output frame
period, so that frame ``t`` is the same instant in each; that is checked when the ensemble is
made and again when it is loaded. A decoder (``decoding.yaml``, ``asr models set-decoder``) then
searches the averaged posteriors as it would one model's.
"""

from __future__ import annotations

import filecmp
import math
import shutil
from pathlib import Path

import torch
import yaml

from asr.errors import ModelError
from asr.modeldir import LoadedModel, is_model_dir, load_member, load_model_dir
from asr.utils import atomic_write_text

ENSEMBLE_FILE = "ensemble.yaml"
COMBINE = "mean_posterior"


def is_ensemble(path: str | Path) -> bool:
    return (Path(path) / ENSEMBLE_FILE).is_file()


def member_files(path: Path) -> list[tuple[str, str]]:
    """``(config, weights)`` file names of each member of the ensemble at ``path``."""
    file = path / ENSEMBLE_FILE
    try:
        spec = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(f"{file}: unreadable ({exc})".replace("\n", " ")) from None
    members = spec.get("members") if isinstance(spec, dict) else None
    if not isinstance(members, list) or not members:
        raise ModelError(f"{file}: expected 'members:', a list of {{config, weights}}; "
                         "remake it with `asr models ensemble`")
    if spec.get("combine", COMBINE) != COMBINE:
        raise ModelError(f"{file}: combine: {spec.get('combine')!r} is unknown; use {COMBINE}")
    files = []
    for index, member in enumerate(members, 1):
        if not (isinstance(member, dict) and isinstance(member.get("config"), str)
                and isinstance(member.get("weights"), str)):
            raise ModelError(f"{file}: member {index} needs 'config' and 'weights' file names")
        for name in (member["config"], member["weights"]):
            if Path(name).name != name:
                raise ModelError(f"{file}: member {index}: '{name}' must be a file of the "
                                 "ensemble directory, not a path")
        files.append((member["config"], member["weights"]))
    return files


def frame_period(loaded: LoadedModel) -> tuple[int, int]:
    """``(sample rate, samples per output frame)`` of a model."""
    from asr.features import build_frontend

    features = loaded.config.features
    hop = build_frontend(features, standalone=True).hop_length
    return features.sample_rate, hop * loaded.model.subsampling


def check_compatible(members: list[LoadedModel], where: Path) -> None:
    """Refuse members whose frames or units differ from the first's."""
    first = members[0]
    rate, period = frame_period(first)
    for index, member in enumerate(members[1:], 2):
        if member.tokenizer.tokens != first.tokenizer.tokens:
            raise ModelError(f"{where}: member {index} ({member.path}) has other output units "
                             f"than member 1 ({first.path}); an ensemble needs the same tokens.txt")
        other_rate, other_period = frame_period(member)
        if (other_rate, other_period) != (rate, period):
            raise ModelError(
                f"{where}: member {index} ({member.path}) gives a frame every {other_period} "
                f"samples at {other_rate} Hz, member 1 every {period} at {rate} Hz; the "
                "posteriors of an ensemble are averaged frame by frame, so these must match")


def load_members(path: str | Path, device: torch.device | str = "cpu") -> list[LoadedModel]:
    """Every member of an ensemble directory (a plain model directory: its one model)."""
    path = Path(path)
    if not is_ensemble(path):
        return [load_model_dir(path, device)]
    members = [load_member(path, config, weights, device) for config, weights in member_files(path)]
    check_compatible(members, path)
    return members


def make_ensemble(output: str | Path, model_dirs: list[str | Path]) -> Path:
    """Write the ensemble of ``model_dirs`` (plain model directories, two or more) to ``output``:
    the first model's files as they are, each further model's config and weights as
    ``member-N.yaml`` / ``member-N.pt``, and ``ensemble.yaml``. No decoder is copied: give the
    ensemble one with ``asr models set-decoder``."""
    output = Path(output)
    sources = [Path(d) for d in model_dirs]
    if len(sources) < 2:
        raise ModelError("an ensemble needs two or more model directories")
    for source in sources:
        if not is_model_dir(source):
            raise ModelError(f"{source}: not a model directory (needs model.pt, config.yaml, tokens.txt)")
        if is_ensemble(source):
            raise ModelError(f"{source}: is an ensemble already; list its members instead")
    for source in sources[1:]:
        if not filecmp.cmp(source / "tokens.txt", sources[0] / "tokens.txt", shallow=False):
            raise ModelError(f"{source / 'tokens.txt'} differs from {sources[0] / 'tokens.txt'}: "
                             "an ensemble's members need the same output units")
    check_compatible([load_model_dir(s) for s in sources], output)
    if output.exists() and any(output.iterdir()):
        raise ModelError(f"{output}: exists and is not empty; choose a new directory")
    output.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "model.pt", "tokens.txt"):
        shutil.copy2(sources[0] / name, output / name)
    members = [{"config": "config.yaml", "weights": "model.pt", "from": str(sources[0])}]
    for index, source in enumerate(sources[1:], 2):
        shutil.copy2(source / "config.yaml", output / f"member-{index}.yaml")
        shutil.copy2(source / "model.pt", output / f"member-{index}.pt")
        members.append({"config": f"member-{index}.yaml", "weights": f"member-{index}.pt",
                        "from": str(source)})
    spec = {"combine": COMBINE, "members": members}
    # Written last: a directory without it is an incomplete copy, not a wrong ensemble.
    atomic_write_text(output / ENSEMBLE_FILE, yaml.safe_dump(spec, sort_keys=False))
    return output


def combine_log_probs(outputs: list[tuple[torch.Tensor, torch.Tensor]]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean posterior of the members' ``(batch, time, vocab)`` log-probs and ``(batch,)``
    lengths, as log-probs. Members of one frame period differ by at most a frame at the end
    (rounding of their front ends); the common frames are kept."""
    if len(outputs) == 1:
        return outputs[0]
    time = min(out.shape[1] for out, _ in outputs)
    stacked = torch.stack([out[:, :time].float() for out, _ in outputs])
    lengths = torch.stack([length for _, length in outputs]).min(dim=0).values.clamp(max=time)
    return torch.logsumexp(stacked, dim=0) - math.log(len(outputs)), lengths
