"""Cepstral mean and variance normalisation: statistics, the Kaldi stats format, and the modes.

Modes (``features.cmvn``):

- ``global``: mean/std over the whole training set, kept as buffers of the model
  (:class:`FeatureNormalizer`), so they travel in ``model.pt`` of the model directory.
- ``speaker``: each utterance normalised with the statistics of its speaker (``utt2spk``),
  Kaldi's ``compute-cmvn-stats --spk2utt`` + ``apply-cmvn``: computed when precomputed features
  are loaded, or, with features computed on the fly, from each speaker's unperturbed audio
  when training starts (:class:`SpeakerTable`); the model receives normalised features and
  passes them through. At inference the statistics come from the speaker's own audio
  (``asr decode`` groups a data directory by ``utt2spk``; ``transcribe --one-speaker`` pools
  its files); a lone recording is its own speaker (per-utterance statistics).
- ``utterance``: each utterance on its own, inside the model.
- ``none``: raw features.

Kaldi's statistics are a ``(2, dim + 1)`` float64 matrix per speaker (or utterance): row 0 holds
the sums with the frame count in the last column, row 1 the sums of squares (last column 0).
:func:`write_cmvn_stats` / :func:`read_cmvn_stats` write and read them as ark/scp with kaldiio.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import kaldiio
import numpy as np
import torch
from torch import nn

from asr.errors import DataDirError
from asr.features.logmel import valid_mask
from asr.utils import atomic_write_text

CMVN_MODES = ("global", "speaker", "utterance", "none")


def utterance_cmvn(feats: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each utterance of ``(batch, time, dim)`` to zero mean and unit variance over
    its own valid frames; padding frames are set to zero."""
    mask = valid_mask(lengths.to(feats.device), feats.shape[1]).unsqueeze(-1)
    count = lengths.to(feats.device).clamp(min=1).to(feats.dtype)[:, None, None]
    mean = (feats * mask).sum(1, keepdim=True) / count
    var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / count
    return ((feats - mean) / torch.sqrt(var + eps)) * mask


def normalize(feats: torch.Tensor, lengths: torch.Tensor, mean: torch.Tensor,
              std: torch.Tensor) -> torch.Tensor:
    """``(feats - mean) / std`` for ``(batch, time, dim)`` features with ``mean`` and ``std``
    of shape ``(dim,)`` (one set for the batch) or ``(batch, dim)`` (one per utterance);
    padding frames are set to zero, as :func:`utterance_cmvn` does."""
    if mean.dim() == 2:
        mean, std = mean[:, None, :], std[:, None, :]
    mask = valid_mask(lengths.to(feats.device), feats.shape[1]).unsqueeze(-1)
    return (feats - mean.to(feats.device)) / std.to(feats.device) * mask


class CmvnStats:
    """Accumulates per-dimension count, sum and sum of squares over many utterances
    (the statistics Kaldi's ``compute-cmvn-stats`` keeps), in float64."""

    def __init__(self, dim: int) -> None:
        self.count = 0
        self.sum = np.zeros(dim, dtype=np.float64)
        self.sum_sq = np.zeros(dim, dtype=np.float64)

    @property
    def dim(self) -> int:
        return self.sum.shape[0]

    def add(self, feats: torch.Tensor | np.ndarray) -> None:
        """Add the frames of one ``(time, dim)`` utterance."""
        array = np.asarray(feats, dtype=np.float64)
        self.count += array.shape[0]
        self.sum += array.sum(axis=0)
        self.sum_sq += np.square(array).sum(axis=0)

    def merge(self, other: CmvnStats) -> None:
        self.count += other.count
        self.sum += other.sum
        self.sum_sq += other.sum_sq

    def mean_std(self, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and ``sqrt(var + eps)`` as float32 ``(dim,)`` tensors."""
        if self.count == 0:
            raise ValueError("no frames accumulated for CMVN statistics")
        mean = self.sum / self.count
        var = np.maximum(self.sum_sq / self.count - mean**2, 0.0)
        return torch.from_numpy(mean).float(), torch.from_numpy(np.sqrt(var + eps)).float()

    def apply(self, feats: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
        """Normalise ``(time, dim)`` (or ``(batch, time, dim)``) features with these statistics."""
        mean, std = self.mean_std(eps)
        return (feats - mean.to(feats.device)) / std.to(feats.device)

    def to_kaldi(self) -> np.ndarray:
        """Kaldi's ``(2, dim + 1)`` float64 matrix."""
        matrix = np.zeros((2, self.dim + 1), dtype=np.float64)
        matrix[0, :-1] = self.sum
        matrix[0, -1] = self.count
        matrix[1, :-1] = self.sum_sq
        return matrix

    @classmethod
    def from_kaldi(cls, matrix: np.ndarray) -> CmvnStats:
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != 2 or matrix.shape[1] < 2:
            raise ValueError(f"Kaldi CMVN stats are a (2, dim + 1) matrix, got {matrix.shape}")
        stats = cls(matrix.shape[1] - 1)
        stats.sum = matrix[0, :-1].copy()
        stats.count = int(round(matrix[0, -1]))
        stats.sum_sq = matrix[1, :-1].copy()
        return stats


def group_stats(
    feats: Mapping[str, torch.Tensor | np.ndarray], utt2group: Mapping[str, str]
) -> dict[str, CmvnStats]:
    """Statistics per group (speaker) of the utterances in ``feats`` (``utt -> (time, dim)``);
    an utterance missing from ``utt2group`` is its own group."""
    table = SpeakerTable(utt2group)
    for utt, array in feats.items():
        table.add(utt, array)
    return table.stats


class SpeakerTable:
    """Per-speaker CMVN statistics (training with features computed on the fly,
    :func:`group_stats`): each speaker's statistics, mean and standard deviation, and the
    speaker of each utterance.

    Built once from the unperturbed features of every utterance (:meth:`add`, then
    :meth:`finish`); :meth:`normalize` then looks a batch's utterances up by id. An utterance
    missing from ``utt2spk`` is its own speaker.
    """

    def __init__(self, utt2spk: Mapping[str, str]) -> None:
        self.utt2spk = dict(utt2spk)
        self.stats: dict[str, CmvnStats] = {}  # speaker -> its statistics
        self._mean: dict[str, torch.Tensor] = {}
        self._std: dict[str, torch.Tensor] = {}

    def add(self, utt_id: str, feats: torch.Tensor | np.ndarray) -> None:
        """Add the ``(time, dim)`` features of one utterance to its speaker's statistics."""
        speaker = self.utt2spk.get(utt_id, utt_id)
        if speaker not in self.stats:
            self.stats[speaker] = CmvnStats(feats.shape[-1])
        self.stats[speaker].add(feats)

    def finish(self) -> None:
        for speaker, stats in self.stats.items():
            self._mean[speaker], self._std[speaker] = stats.mean_std()

    @property
    def num_speakers(self) -> int:
        return len(self.stats)

    @property
    def num_frames(self) -> int:
        return sum(stats.count for stats in self.stats.values())

    def normalize(self, feats: torch.Tensor, lengths: torch.Tensor,
                  utt_ids: list[str]) -> torch.Tensor:
        """Normalise each utterance of ``(batch, time, dim)`` with its speaker's statistics."""
        try:
            speakers = [self.utt2spk.get(utt, utt) for utt in utt_ids]
            mean = torch.stack([self._mean[s] for s in speakers])
            std = torch.stack([self._std[s] for s in speakers])
        except KeyError as exc:
            raise KeyError(f"no speaker CMVN statistics for speaker {exc} (utterances "
                           f"{' '.join(utt_ids)})") from None
        return normalize(feats, lengths, mean, std)


def write_cmvn_stats(
    stats: Mapping[str, CmvnStats], ark: str | Path, scp: str | Path | None = None
) -> None:
    """Write Kaldi CMVN statistics to ``ark`` (binary) and ``scp`` with kaldiio, atomically
    (the ark is written under a temporary name, then both are moved into place)."""
    ark = Path(ark).absolute()
    ark.parent.mkdir(parents=True, exist_ok=True)
    tmp = ark.with_name(f".{ark.name}.{os.getpid()}.tmp")
    lines = []
    try:
        with open(tmp, "wb") as handle:
            for key in sorted(stats, key=lambda k: k.encode("utf-8")):
                offset = handle.tell() + len(key.encode("utf-8")) + 1
                kaldiio.save_ark(handle, {key: stats[key].to_kaldi()})
                lines.append(f"{key} {ark}:{offset}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, ark)
    finally:
        tmp.unlink(missing_ok=True)
    if scp is not None:
        atomic_write_text(scp, "".join(lines))


def read_cmvn_stats(scp: str | Path) -> dict[str, CmvnStats]:
    """Read Kaldi CMVN statistics (``cmvn.scp``) with kaldiio; errors name the file."""
    scp = Path(scp)
    try:
        with warnings.catch_warnings():  # kaldiio warns before raising; the error says it all
            warnings.simplefilter("ignore")
            table = kaldiio.load_scp(str(scp))
            return {key: CmvnStats.from_kaldi(table[key]) for key in table}
    except FileNotFoundError as exc:
        raise DataDirError(f"{scp}: cannot read CMVN statistics ({exc})") from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise DataDirError(f"{scp}: invalid CMVN statistics ({exc})") from None


class FeatureNormalizer(nn.Module):
    """Mean/variance normalisation of ``(batch, time, dim)`` features inside the model.

    ``global``: statistics of the training set, kept as buffers so they travel with the model's
    weights; ``utterance``: each utterance on its own; ``speaker`` and ``none``: identity
    (``speaker`` features arrive normalised by their speaker's statistics).
    """

    def __init__(self, mode: str, dim: int) -> None:
        super().__init__()
        if mode not in CMVN_MODES:
            raise ValueError(f"unknown CMVN mode {mode!r}; use one of {', '.join(CMVN_MODES)}")
        self.mode = mode
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.mode == "global":
            return (feats - self.mean) / self.std
        if self.mode == "utterance":
            return utterance_cmvn(feats, lengths)
        return feats
