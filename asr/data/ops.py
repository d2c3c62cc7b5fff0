"""Kaldi's data-directory utilities on :class:`~asr.data.datafiles.DataFiles`: subset
(``subset_data_dir.sh``), combine (``combine_data.sh``) and copy with new ids
(``copy_data_dir.sh``); see docs/data.md."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from asr.data.datafiles import DataFiles
from asr.data.durations import known_durations
from asr.data.files import FORMATS, utt2spk_to_spk2utt
from asr.data.tables import c_sort_key, format_float
from asr.errors import DataDirError

log = logging.getLogger(__name__)


# ---- subsets (each returns utterance ids)


def evenly_spaced(items: list[str], n: int) -> list[str]:
    """``n`` items spread evenly over ``items`` (all of them when ``n`` >= their number)."""
    if n >= len(items):
        return list(items)
    if n <= 0:
        return []
    return [items[(i * len(items)) // n] for i in range(n)]


def subset_utterances(
    data: DataFiles,
    *,
    first: int | None = None,
    last: int | None = None,
    shortest: int | None = None,
    evenly: int | None = None,
    per_spk: int | None = None,
    speakers: int | None = None,
    utt_list: Iterable[str] | None = None,
    spk_list: Iterable[str] | None = None,
    allow_pipes: bool = False,
) -> list[str]:
    """Utterance ids chosen by exactly one of the criteria of Kaldi's subset_data_dir.sh."""
    chosen = [
        name
        for name, value in locals().items()
        if name not in ("data", "allow_pipes") and value is not None
    ]
    if len(chosen) != 1:
        raise DataDirError(f"choose exactly one subset criterion, got {chosen or 'none'}")
    utts = data.utterances
    if first is not None:
        return utts[:first]
    if last is not None:
        return utts[-last:] if last > 0 else []
    if evenly is not None:
        return evenly_spaced(utts, evenly)
    if shortest is not None:
        durations = known_durations(data, allow_pipes)
        by_length = sorted(utts, key=lambda u: (durations[u], c_sort_key(u)))
        return sorted(by_length[:shortest], key=c_sort_key)
    spk2utt = utt2spk_to_spk2utt(data.utt2spk)
    if per_spk is not None:
        return sorted((u for us in spk2utt.values() for u in us[:per_spk]), key=c_sort_key)
    if speakers is not None:
        # Whole speakers, in C-locale order, until there are at least that many utterances.
        picked: list[str] = []
        for spk_utts in spk2utt.values():
            if len(picked) >= speakers:
                break
            picked.extend(spk_utts)
        return sorted(picked, key=c_sort_key)
    if utt_list is not None:
        wanted = set(utt_list)
        missing = wanted - set(utts)
        if missing:
            log.warning("%d listed utterance(s) are not in the data, e.g. %s",
                        len(missing), sorted(missing)[0])
        return [u for u in utts if u in wanted]
    assert spk_list is not None
    wanted_spk = set(spk_list)
    missing = wanted_spk - set(spk2utt)
    if missing:
        log.warning("%d listed speaker(s) are not in the data, e.g. %s",
                    len(missing), sorted(missing)[0])
    return [u for u in utts if data.utt2spk[u] in wanted_spk]


def read_id_list(path: str | Path) -> list[str]:
    """The first field of every line of a list file (extra fields are ignored, as in Kaldi)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataDirError(f"{path}: list file not found") from None
    except UnicodeDecodeError:
        raise DataDirError(f"{path}: not valid UTF-8") from None
    return [line.split()[0] for line in text.splitlines() if line.strip()]


# ---- combine and copy


def combine(sources: list[DataFiles], allow_pipes: bool = False) -> DataFiles:
    """One data directory holding every utterance of ``sources`` (ids must not collide).

    A file present in only some sources is left out (with a note), except ``segments``: sources
    without one get whole-recording segments so that the result can hold both kinds.
    """
    if not sources:
        raise DataDirError("nothing to combine: give at least one source directory")
    names = set().union(*(s.files for s in sources))
    mixed_segments = any(s.has_segments for s in sources) and not all(
        s.has_segments for s in sources
    )
    if mixed_segments:
        sources = [s if s.has_segments else _with_whole_segments(s, allow_pipes) for s in sources]
    if "utt2uniq" in names:
        # As Kaldi: a source without utt2uniq has unique utterances (each maps to itself).
        sources = [_with_utt2uniq(s) for s in sources]
    notes = []
    files: dict[str, dict[str, str]] = {}
    for name in sorted(names):
        holders = [s for s in sources if name in s.files]
        if len(holders) != len(sources):
            notes.append(f"{name}: not in every source directory, left out of the result")
            continue
        merged: dict[str, str] = {}
        origin: dict[str, Path | None] = {}
        for src in holders:
            for key, value in src.files[name].items():
                if key in merged and merged[key] != value:
                    raise DataDirError(
                        f"{src.source}/{name}: id '{key}' is also in {origin[key]}/{name} "
                        "with another value; ids must be unique across the combined directories"
                    )
                if key in merged and FORMATS[name].index == "utt":
                    raise DataDirError(
                        f"{src.source}/{name}: utterance '{key}' is also in {origin[key]}; "
                        "utterance ids must be unique across the combined directories"
                    )
                merged[key] = value
                origin[key] = src.source
        files[name] = merged
    if "utt2spk" not in files:
        raise DataDirError("combine: every source needs utt2spk")
    return DataFiles(files, None, notes)


def _with_utt2uniq(data: DataFiles) -> DataFiles:
    if "utt2uniq" in data.files:
        return data
    files = {name: dict(entries) for name, entries in data.files.items()}
    files["utt2uniq"] = {u: u for u in data.utterances}
    return DataFiles(files, data.source)


def _with_whole_segments(data: DataFiles, allow_pipes: bool) -> DataFiles:
    """Recording = utterance, one segment covering it (needs its duration)."""
    durations = known_durations(data, allow_pipes)
    files = {name: dict(entries) for name, entries in data.files.items()}
    files["segments"] = {u: f"{u} 0 {format_float(durations[u])}" for u in data.utterances}
    return DataFiles(files, data.source)


def copy_renamed(
    data: DataFiles,
    utt_prefix: str = "",
    utt_suffix: str = "",
    spk_prefix: str = "",
    spk_suffix: str = "",
) -> DataFiles:
    """Kaldi's copy_data_dir.sh: utterance and speaker ids get prefixes/suffixes; recording ids
    stay as they are when there is a segments file."""
    renamed = data.rename(
        utt=lambda u: f"{utt_prefix}{u}{utt_suffix}",
        spk=lambda s: f"{spk_prefix}{s}{spk_suffix}",
    )
    return renamed
