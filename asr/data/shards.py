"""WebDataset tar shards of a Kaldi data directory, streamed by rank and by DataLoader worker.

The data directory stays the source of truth; the shards are a derived cache for corpora that
outgrow one filesystem (10k+ hours, object stores). :func:`write_shards` (``asr data
make-shards DATA_DIR OUT_DIR``) decodes every utterance (segments too) at one sample rate and
writes ``OUT_DIR/shard-000000.tar, ...``, plain tar files that any tool reads: per utterance
``<key>.flac`` (16-bit FLAC) and ``<key>.json`` (``utt_id``, ``text``, ``speaker``,
``duration``, ``sample_rate``), the key being the utterance id with ``%``, ``.`` and ``/``
escaped (:func:`escape_key`). Utterances go to shards in a seeded shuffled order, so shards
hold similar amounts of audio; every shard holds ``utts_per_shard`` utterances but the last.
``OUT_DIR/shards.yaml``, written last and atomically, lists the shards (utterances, bytes,
hours), the settings and a fingerprint (size and SHA-256) of the data dir's ``wav.scp``,
``segments``, ``text``, ``utt2spk`` and ``utt2dur``: :func:`check_shards` refuses, as
``feats.yaml`` does for feature dumps, a cache that no longer matches its data dir.

:class:`ShardStream` is an ``IterableDataset`` of :class:`ShardUtterance` s. Each epoch the
shard order is shuffled with ``(seed, epoch)``; shard ``i`` of that order goes to rank
``i % world_size`` and, within the rank, to DataLoader worker ``(i // world_size) %
num_workers``. So ``world_size`` ranks with any number of workers each read every utterance
exactly once per epoch. Shards are read by webdataset from paths, URLs or ``pipe:`` commands
(``pipe:aws s3 cp s3://bucket/shard-000000.tar -``).

webdataset is an optional dependency (``pip install 'asr[shards]'``); it is imported when
shards are written or read.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import random
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

import numpy as np
import torch
import yaml

from asr.data.datadir import read_data_dir
from asr.errors import AsrError, AudioError, DataDirError
from asr.utils import atomic_write_text

log = logging.getLogger(__name__)

MANIFEST = "shards.yaml"
SHARD_PATTERN = "shard-{:06d}.tar"
AUDIO_FORMATS = ("flac", "wav")
# The files of a data dir that determine the shards' contents.
SOURCE_FILES = ("wav.scp", "segments", "text", "utt2spk", "utt2dur")
MANIFEST_VERSION = 1


class ShardUtterance(NamedTuple):
    """One utterance read from a shard (a tuple: ``utt_id, samples, text, speaker, duration,
    error``). Audio that cannot be decoded gives no samples and the error, so that the reader
    can skip and count it."""

    utt_id: str
    samples: np.ndarray  # (time,) float32 at the manifest's sample rate; empty with an error
    text: str
    speaker: str
    duration: float  # seconds, from utt2dur
    error: str | None = None  # why the audio could not be decoded


def _webdataset():
    try:
        import webdataset
    except ImportError:
        raise AsrError("shards need the webdataset package: pip install 'asr[shards]' "
                       "(or pip install webdataset)") from None
    return webdataset


def _rerun(data_dir: str | Path | None, out_dir: str | Path) -> str:
    return f"rerun `asr data make-shards {data_dir if data_dir is not None else 'DATA_DIR'} {out_dir}`"


# ---------------------------------------------------------------------------------- keys


def escape_key(utt_id: str) -> str:
    """The WebDataset key of an utterance: ``%``, ``.`` and ``/`` percent-escaped (webdataset
    splits a member name at its first dot; a slash would make a directory), and a leading
    ``_`` too (``__...__`` names are webdataset's metadata). :func:`unescape_key` reverses it."""
    key = utt_id.replace("%", "%25").replace(".", "%2E").replace("/", "%2F")
    if key.startswith("_"):
        key = "%5F" + key[1:]
    return key


def unescape_key(key: str) -> str:
    """The utterance id of a key made by :func:`escape_key`."""
    return unquote(key)


# ---------------------------------------------------------------------------- manifest


def source_fingerprint(data_dir: str | Path) -> dict[str, Any]:
    """The data dir's path and, per file of :data:`SOURCE_FILES`, its size and SHA-256
    (None when the file is absent)."""
    path = Path(data_dir)
    files: dict[str, Any] = {}
    for name in SOURCE_FILES:
        file = path / name
        if not file.is_file():
            files[name] = None
            continue
        digest = hashlib.sha256()
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        files[name] = {"size": file.stat().st_size, "sha256": digest.hexdigest()}
    return {"data_dir": str(path.absolute()), "files": files}


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """``OUT_DIR/shards.yaml`` (``out_dir`` may also be the file itself); a missing or
    unreadable manifest is a :class:`DataDirError` naming it."""
    path = Path(out_dir)
    if path.is_dir() or path.name != MANIFEST:
        path = path / MANIFEST
    if not path.is_file():
        raise DataDirError(f"{path}: not found (no finished shards here); {_rerun(None, path.parent)}")
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise DataDirError(f"{path}: unreadable ({exc}); {_rerun(None, path.parent)}".replace("\n", " ")) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list):
        raise DataDirError(f"{path}: not a shard manifest (no shard list); {_rerun(None, path.parent)}")
    return manifest


def check_shards(out_dir: str | Path, data_dir: str | Path) -> dict[str, Any]:
    """The manifest of ``out_dir`` after checking that every shard is there with its size, and
    that ``data_dir`` has not changed since the shards were written. Otherwise a
    :class:`DataDirError` of one line naming the file and saying to rerun ``make-shards``."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    rerun = _rerun(data_dir, out_dir)
    for shard in manifest["shards"]:
        path = out / shard["name"]
        if not path.is_file():
            raise DataDirError(f"{path}: shard missing (listed in {out / MANIFEST}); {rerun}")
        size = path.stat().st_size
        if size != shard["bytes"]:
            raise DataDirError(f"{path}: {size} bytes but {MANIFEST} says {shard['bytes']} "
                               f"(truncated or rewritten); {rerun}")
    if not Path(data_dir).is_dir():
        raise DataDirError(f"{data_dir}: data directory not found")
    recorded = (manifest.get("source") or {}).get("files") or {}
    now = source_fingerprint(data_dir)["files"]
    for name in SOURCE_FILES:
        if recorded.get(name) != now[name]:
            if now[name] is None:
                what = "removed"
            elif recorded.get(name) is None:
                what = "added"
            else:
                what = "changed"
            raise DataDirError(f"{Path(data_dir) / name}: {what} since the shards in {out} were "
                               f"written; {rerun}")
    return manifest


# ------------------------------------------------------------------------------- write


def _encode(samples: np.ndarray, sample_rate: int, audio_format: str) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format=audio_format.upper(), subtype="PCM_16")
    return buffer.getvalue()


def write_shards(
    data_dir: str | Path,
    out_dir: str | Path,
    sample_rate: int,
    utts_per_shard: int = 1000,
    audio_format: str = "flac",
    seed: int = 0,
    allow_pipes: bool | None = None,
) -> dict[str, Any]:
    """Write the shards of ``data_dir`` into ``out_dir`` (see the module doc) and return the
    manifest. Utterances whose audio cannot be read are skipped with a warning and listed in
    the manifest (``skipped``). An older manifest is removed first and shards of an earlier,
    larger run that the new manifest does not list are deleted at the end."""
    from asr.data.durations import durations_or_measure
    from asr.data.wav_audio import load_utterance_audio

    wds = _webdataset()
    if utts_per_shard < 1:
        raise AsrError(f"--utts-per-shard {utts_per_shard}: need at least 1")
    if audio_format not in AUDIO_FORMATS:
        raise AsrError(f"audio format {audio_format!r}: use one of {', '.join(AUDIO_FORMATS)}")
    if sample_rate < 1:
        raise AsrError(f"--sample-rate {sample_rate}: need a positive rate")
    data = read_data_dir(data_dir, require_text=False, allow_pipes=allow_pipes)
    if not data.utterances:
        raise DataDirError(f"{data.path}: no utterances in wav.scp")
    seconds, skipped = durations_or_measure(data)  # writes utt2dur when it is missing
    for utt_id, error in skipped:
        log.warning("utterance %s: %s (skipped)", utt_id, error)
    bad = {u for u, _ in skipped}
    utts = [u for u in data.utterances if u.utt_id not in bad]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # a half-rewritten directory is never "finished"

    order = list(range(len(utts)))
    random.Random(seed).shuffle(order)
    groups = [order[i:i + utts_per_shard] for i in range(0, len(order), utts_per_shard)]
    shards: list[dict[str, Any]] = []
    written = 0
    for index, group in enumerate(groups):
        name = SHARD_PATTERN.format(index)
        path = out / name
        tmp = out / f".{name}.tmp"
        count, shard_seconds = 0, 0.0
        try:
            with open(tmp, "wb") as handle:
                writer = wds.TarWriter(handle, encoder=False, mtime=0.0)
                # Data-dir order within a shard: segments of one recording decode it once.
                for i in sorted(group):
                    utt = utts[i]
                    try:
                        samples = load_utterance_audio(utt, sample_rate)
                    except AudioError as exc:
                        log.warning("utterance %s: %s (skipped)", utt.utt_id, exc)
                        skipped.append((utt.utt_id, str(exc)))
                        continue
                    duration = float(seconds.get(utt.utt_id, len(samples) / sample_rate))
                    meta = {"utt_id": utt.utt_id, "text": utt.text, "speaker": utt.speaker,
                            "duration": duration, "sample_rate": sample_rate}
                    writer.write({
                        "__key__": escape_key(utt.utt_id),
                        audio_format: _encode(samples, sample_rate, audio_format),
                        "json": json.dumps(meta, ensure_ascii=False).encode("utf-8"),
                    })
                    count += 1
                    shard_seconds += duration
                writer.close()
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        written += count
        shards.append({"name": name, "utterances": count, "bytes": path.stat().st_size,
                       "hours": round(shard_seconds / 3600, 6)})
        log.info("%s: %d utterances", path, count)
    if written == 0:
        first = skipped[0] if skipped else ("?", "no audio")
        raise AsrError(f"{data.path}: no utterance could be read (first '{first[0]}': {first[1]})")
    manifest = {
        "version": MANIFEST_VERSION,
        "audio_format": audio_format,
        "sample_rate": sample_rate,
        "utterances": written,
        "hours": round(sum(s["hours"] for s in shards), 6),
        "utts_per_shard": utts_per_shard,
        "seed": seed,
        "source": source_fingerprint(data.path),
        "shards": shards,
        "skipped": [[u, e] for u, e in skipped],
    }
    atomic_write_text(out / MANIFEST, yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
    listed = {s["name"] for s in shards}
    for stale in out.glob("shard-*.tar"):
        if stale.name not in listed:
            stale.unlink()
    return manifest


# -------------------------------------------------------------------------------- read


def _decode_audio(data: bytes, name: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(f"{name}: cannot decode ({exc})") from None
    if samples.ndim > 1:
        samples = samples.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


class ShardStream(torch.utils.data.IterableDataset):
    """The utterances of a set of shards, each once per epoch over all ranks and workers.

    ``shards``: a shard directory or its ``shards.yaml`` (the shards are read from beside it,
    or from ``url_template.format(name=...)``, e.g. ``"pipe:aws s3 cp s3://b/{name} -"``), or
    a list of shard paths/URLs. ``rank``/``world_size``: this process's place in the data
    parallel group. ``seed`` and the epoch (:meth:`set_epoch`, before each ``iter(loader)``:
    workers get a copy of the dataset when an iteration starts) shuffle the shard order.
    ``shuffle_buffer`` > 0 also shuffles utterances across the shards a worker reads, within
    a buffer of that many (seeded by seed, epoch, rank and worker).

    Yields :class:`ShardUtterance` tuples. A DataLoader with ``batch_size=None`` and no
    ``collate_fn`` turns their ``samples`` into tensors (``default_convert``).
    """

    def __init__(
        self,
        shards: str | Path | Sequence[str | Path],
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        epoch: int = 0,
        url_template: str | None = None,
        shuffle_buffer: int = 0,
    ) -> None:
        super().__init__()
        if world_size < 1 or not 0 <= rank < world_size:
            raise AsrError(f"rank {rank} of world size {world_size}: need 0 <= rank < world_size")
        self.sample_rate: int | None = None
        self.utterances: int | None = None
        if isinstance(shards, (str, Path)):
            manifest = read_manifest(shards)
            root = Path(shards)
            root = root if root.is_dir() else root.parent
            names = [s["name"] for s in manifest["shards"]]
            if url_template is not None:
                self.urls = [url_template.format(name=n) for n in names]
            else:
                self.urls = [str(root / n) for n in names]
            self.sample_rate = int(manifest["sample_rate"])
            self.utterances = int(manifest["utterances"])
            self.shard_utterances = [int(s["utterances"]) for s in manifest["shards"]]
        else:
            self.urls = [str(u) for u in shards]
            self.shard_utterances = None
        if not self.urls:
            raise DataDirError(f"{shards}: no shards")
        if len(self.urls) < world_size:
            raise DataDirError(f"{len(self.urls)} shard(s) for {world_size} ranks: every rank "
                               "needs at least one; write smaller shards (--utts-per-shard)")
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.epoch = epoch
        self.shuffle_buffer = shuffle_buffer

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_order(self, epoch: int | None = None) -> list[int]:
        """Indices of the shards in the epoch's order (the same on every rank)."""
        epoch = self.epoch if epoch is None else epoch
        return [int(i) for i in np.random.default_rng((self.seed, epoch)).permutation(len(self.urls))]

    def assigned(self, worker: int = 0, num_workers: int = 1, epoch: int | None = None) -> list[int]:
        """Indices of the shards that (this rank, ``worker``) reads in the epoch, in order."""
        order = self.epoch_order(epoch)
        return [shard for i, shard in enumerate(order)
                if i % self.world_size == self.rank
                and (i // self.world_size) % num_workers == worker]

    def rank_utterances(self, epoch: int | None = None) -> int | None:
        """Utterances this rank reads in the epoch (None without a manifest)."""
        if self.shard_utterances is None:
            return None
        order = self.epoch_order(epoch)
        return sum(self.shard_utterances[s] for i, s in enumerate(order)
                   if i % self.world_size == self.rank)

    def _split(self, src: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """webdataset node+worker splitter: position i of the epoch order to rank
        ``i % world_size``, worker ``(i // world_size) % num_workers``."""
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = 0
        for i, item in enumerate(src):
            if i % self.world_size == self.rank and (i // self.world_size) % num_workers == worker:
                mine += 1
                yield item
        if mine == 0:
            warnings.warn(f"rank {self.rank} worker {worker}: no shard to read ({len(self.urls)} "
                          f"shard(s) for {self.world_size} rank(s) x {num_workers} worker(s)); "
                          "use fewer workers or smaller shards", stacklevel=2)

    def _decode(self, sample: dict[str, Any]) -> ShardUtterance:
        where = f"{sample.get('__url__')}: '{sample.get('__key__')}'"
        if "json" not in sample:
            raise DataDirError(f"{where}: no .json member; the shard is not from make-shards")
        meta = json.loads(sample["json"])
        audio = next((sample[f] for f in AUDIO_FORMATS if f in sample), None)
        if audio is None:
            raise DataDirError(f"{where}: no audio member ({', '.join(AUDIO_FORMATS)})")
        utt_id = meta.get("utt_id", unescape_key(sample["__key__"]))
        try:
            samples, rate = _decode_audio(audio, where)
        except AudioError as exc:
            return ShardUtterance(utt_id, np.zeros(0, dtype=np.float32), meta.get("text", ""),
                                  meta.get("speaker", ""), float(meta.get("duration", 0.0)), str(exc))
        expected = self.sample_rate or meta.get("sample_rate")
        if expected is not None and rate != int(expected):
            raise DataDirError(f"{where}: audio at {rate} Hz, the manifest says {expected} Hz")
        return ShardUtterance(utt_id, samples, meta.get("text", ""), meta.get("speaker", ""),
                              float(meta.get("duration", len(samples) / rate)))

    def __iter__(self) -> Iterator[ShardUtterance]:
        wds = _webdataset()
        urls = [self.urls[i] for i in self.epoch_order()]
        stages: list[Any] = [wds.SimpleShardList(urls), self._split, wds.tarfile_to_samples()]
        if self.shuffle_buffer > 0:
            info = torch.utils.data.get_worker_info()
            worker = info.id if info is not None else 0
            rng = random.Random(f"{self.seed}-{self.epoch}-{self.rank}-{worker}")
            stages.append(wds.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng))
        stages.append(wds.map(self._decode))
        yield from wds.DataPipeline(*stages)
