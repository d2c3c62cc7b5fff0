"""Dump a data directory's features to Kaldi ``feats.scp``/ark (kaldiio), and read them back.

``compute_features(DATA_DIR, config, nj=N)`` splits the utterances into ``N`` contiguous jobs
(as Kaldi's ``split_data.sh``), each in its own process writing
``ARK_DIR/raw_<type>_<data>.<job>.ark``; then it writes, atomically, in ``DATA_DIR``:

- ``feats.scp``        ``<utt> <abs path to ark>:<offset>`` (float32 matrices, Kaldi binary)
- ``utt2num_frames``   frames per utterance
- ``frame_shift``      seconds between frames (Kaldi's ``utils/data/get_frame_shift.sh``)
- ``feats.yaml``       the feature settings used, so that training can refuse a stale dump
- ``cmvn.scp`` + ark   with ``cmvn`` = speaker / utterance / global: Kaldi CMVN statistics
  keyed by speaker (``utt2spk``), by utterance, or one key ``global``

Kaldi's ``copy-feats scp:feats.scp ark,t:-`` and ``apply-cmvn`` read these files unchanged.
Utterances whose audio cannot be read are skipped with a warning and listed in the report.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import kaldiio
import numpy as np
import torch
import yaml

from asr.config import FeatureConfig
from asr.data.datadir import read_data_dir
from asr.data.tables import write_kaldi_map
from asr.data.utterance import Utterance
from asr.data.wav_audio import load_utterance_audio
from asr.errors import AsrError, AudioError, DataDirError
from asr.features.cmvn import CmvnStats, group_stats, write_cmvn_stats
from asr.features.extractor import build_frontend, feature_dim
from asr.utils import atomic_write_text

log = logging.getLogger(__name__)

FEATS_INFO = "feats.yaml"
CMVN_DUMP_MODES = ("none", "speaker", "utterance", "global")
# Settings that do not change the dumped numbers.
_NOT_DUMPED = ("cmvn", "source")


def feature_settings(config: FeatureConfig) -> dict[str, Any]:
    """The fields of ``config`` that determine the dumped features."""
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_DUMPED}


@dataclass
class DumpReport:
    utterances: int = 0
    frames: int = 0
    audio_seconds: float = 0.0
    seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (utt id, reason)


@dataclass
class _Job:
    index: int
    utterances: list[Utterance]
    config: FeatureConfig
    ark: Path
    device: str
    threads: int
    batch_seconds: float


@dataclass
class _JobResult:
    scp: list[tuple[str, str]]
    frames: dict[str, int]
    audio_seconds: float
    failed: list[tuple[str, str]]
    stats: dict[str, CmvnStats]


def split_jobs(items: Sequence[Any], nj: int) -> list[list[Any]]:
    """``nj`` contiguous, nearly equal parts (the first ones one longer), as split_data.sh."""
    size, extra = divmod(len(items), nj)
    parts, start = [], 0
    for job in range(nj):
        end = start + size + (1 if job < extra else 0)
        parts.append(list(items[start:end]))
        start = end
    return parts


def _run_job(job: _Job) -> _JobResult:
    """Featurise one job's utterances in batches and write them to its ark."""
    torch.set_num_threads(job.threads)
    device = torch.device(job.device)
    frontend = build_frontend(job.config).to(device).eval()
    rate = job.config.sample_rate
    result = _JobResult([], {}, 0.0, [], {})
    tmp = job.ark.with_name(f".{job.ark.name}.{os.getpid()}.tmp")
    budget = max(1, int(job.batch_seconds * rate))
    try:
        with open(tmp, "wb") as handle:
            pending: list[tuple[str, np.ndarray]] = []

            def flush() -> None:
                if not pending:
                    return
                lengths = torch.tensor([len(s) for _, s in pending], dtype=torch.long)
                batch = torch.zeros(len(pending), int(lengths.max()))
                for i, (_, samples) in enumerate(pending):
                    batch[i, : len(samples)] = torch.from_numpy(samples)
                with torch.no_grad():
                    feats, n_frames = frontend(batch.to(device), lengths.to(device))
                feats = feats.cpu().numpy()
                for i, (utt_id, _) in enumerate(pending):
                    matrix = np.ascontiguousarray(feats[i, : int(n_frames[i])], dtype=np.float32)
                    offset = handle.tell() + len(utt_id.encode("utf-8")) + 1
                    kaldiio.save_ark(handle, {utt_id: matrix})
                    result.scp.append((utt_id, f"{job.ark}:{offset}"))
                    result.frames[utt_id] = matrix.shape[0]
                    result.stats[utt_id] = CmvnStats(matrix.shape[1])
                    result.stats[utt_id].add(matrix)
                pending.clear()

            used = 0
            for utt in job.utterances:
                try:
                    samples = load_utterance_audio(utt, rate)
                except AudioError as exc:
                    log.warning("utterance %s: %s", utt.utt_id, exc)
                    result.failed.append((utt.utt_id, str(exc)))
                    continue
                result.audio_seconds += len(samples) / rate
                # Sorted batches would pad less, but the ark keeps the data dir's order.
                if pending and (len(pending) + 1) * max(used, len(samples)) > budget:
                    flush()
                    used = 0
                pending.append((utt.utt_id, samples))
                used = max(used, len(samples))
            flush()
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, job.ark)
    finally:
        tmp.unlink(missing_ok=True)
    return result


def compute_features(
    data_dir: str | Path,
    config: FeatureConfig,
    nj: int = 1,
    ark_dir: str | Path | None = None,
    cmvn: str = "none",
    device: str = "cpu",
    batch_seconds: float = 200.0,
) -> DumpReport:
    """Compute and dump the features of every utterance of ``data_dir`` (see the module doc).

    ``batch_seconds`` bounds the padded audio per forward pass (batch size times its longest
    utterance). With ``nj > 1`` the jobs run in separate processes, each with
    ``cpu_count // nj`` torch threads.
    """
    if cmvn not in CMVN_DUMP_MODES:
        raise AsrError(f"--cmvn {cmvn!r}: use one of {', '.join(CMVN_DUMP_MODES)}")
    if nj < 1:
        raise AsrError(f"--nj {nj}: need at least 1 job")
    build_frontend(config)  # a bad config fails here, before any process starts
    data = read_data_dir(data_dir, require_text=False)
    if not data.utterances:
        raise DataDirError(f"{data.path}: no utterances in wav.scp")
    data_path = data.path.absolute()
    ark_root = Path(ark_dir).absolute() if ark_dir is not None else data_path / "data"
    ark_root.mkdir(parents=True, exist_ok=True)
    nj = min(nj, len(data.utterances))
    threads = max(1, (os.cpu_count() or 1) // nj)
    name = f"raw_{config.type}_{data_path.name}"
    jobs = [
        _Job(i + 1, part, config, ark_root / f"{name}.{i + 1}.ark", device, threads, batch_seconds)
        for i, part in enumerate(split_jobs(data.utterances, nj))
    ]
    start = time.perf_counter()
    if nj == 1:
        results = [_run_job(jobs[0])]
    else:
        # spawn, not fork: forking a process whose torch thread pools already ran can hang.
        with ProcessPoolExecutor(max_workers=nj, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_run_job, jobs))
    report = DumpReport(seconds=time.perf_counter() - start)
    scp: list[tuple[str, str]] = []
    frames: dict[str, int] = {}
    utt_stats: dict[str, CmvnStats] = {}
    for res in results:
        scp += res.scp
        frames.update(res.frames)
        utt_stats.update(res.stats)
        report.audio_seconds += res.audio_seconds
        report.failed += res.failed
    if not scp:
        first = report.failed[0] if report.failed else ("?", "no audio")
        raise AsrError(f"{data.path}: no utterance could be featurised (first '{first[0]}': {first[1]})")
    report.utterances = len(scp)
    report.frames = sum(frames.values())
    write_kaldi_map(data.path / "feats.scp", scp)
    write_kaldi_map(data.path / "utt2num_frames", [(u, str(n)) for u, n in frames.items()])
    shift = build_frontend(config).hop_length / config.sample_rate
    atomic_write_text(data.path / "frame_shift", f"{shift:g}\n")
    info = {"features": feature_settings(config), "cmvn": cmvn}
    atomic_write_text(data.path / FEATS_INFO, yaml.safe_dump(info, sort_keys=False))
    if cmvn != "none":
        utt2spk = data.utt2spk
        if cmvn == "speaker":
            groups = utt2spk
        elif cmvn == "utterance":
            groups = {u: u for u in utt_stats}
        else:
            groups = {u: "global" for u in utt_stats}
        stats: dict[str, CmvnStats] = {}
        for utt, st in utt_stats.items():
            key = groups.get(utt, utt)
            stats.setdefault(key, CmvnStats(st.dim)).merge(st)
        write_cmvn_stats(stats, ark_root / f"cmvn_{data_path.name}.ark", data.path / "cmvn.scp")
    return report


def read_feats_scp(data_dir: str | Path, config: FeatureConfig) -> Mapping[str, np.ndarray]:
    """The dumped features of ``data_dir`` as a lazy ``utt -> (frames, dim)`` mapping.

    Refuses (:class:`DataDirError`) a dump made with other feature settings than ``config``
    (``feats.yaml``), or one without ``feats.yaml`` whose dimension differs from the config's.
    """
    data_dir = Path(data_dir)
    scp = data_dir / "feats.scp"
    if not scp.is_file():
        raise DataDirError(
            f"{scp}: not found; run `asr data compute-features {data_dir}` first or set "
            "features.source: audio"
        )
    info_path = data_dir / FEATS_INFO
    if info_path.is_file():
        try:
            info = yaml.safe_load(info_path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, OSError) as exc:
            raise DataDirError(f"{info_path}: unreadable ({exc})".replace("\n", " ")) from None
        dumped = info.get("features", {}) if isinstance(info, dict) else {}
        wanted = feature_settings(config)
        for key, value in wanted.items():
            if key in dumped and dumped[key] != value:
                raise DataDirError(
                    f"{info_path}: features were dumped with {key}={dumped[key]!r} but the "
                    f"config has {value!r}; rerun `asr data compute-features {data_dir}` with "
                    "this config"
                )
    try:
        table = kaldiio.load_scp(str(scp))
    except Exception as exc:  # noqa: BLE001 - kaldiio raises many kinds on a malformed scp
        raise DataDirError(f"{scp}: cannot read ({exc})") from None
    dim = feature_dim(config)
    first = next(iter(table), None)
    if first is not None:
        try:
            with warnings.catch_warnings():  # kaldiio warns before raising
                warnings.simplefilter("ignore")
                found = np.asarray(table[first]).shape[-1]
        except Exception as exc:  # noqa: BLE001
            raise DataDirError(f"{scp}: cannot read the features of '{first}' ({exc})") from None
        if found != dim:
            raise DataDirError(
                f"{scp}: features have {found} dims but the config gives {dim}; rerun "
                f"`asr data compute-features {data_dir}` with this config"
            )
    return table


def speaker_normalise(
    feats: Mapping[str, torch.Tensor], utt2spk: Mapping[str, str]
) -> dict[str, torch.Tensor]:
    """Normalise each utterance with the CMVN statistics of its speaker (``cmvn: speaker``)."""
    stats = group_stats(feats, utt2spk)
    return {utt: stats[utt2spk.get(utt, utt)].apply(x) for utt, x in feats.items()}
