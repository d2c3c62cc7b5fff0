"""Whole data directories as sets of Kaldi files: select, rename, combine, write.

:class:`DataFiles` holds every known file of a directory with its values exactly as written,
so that subsetting, splitting or copying never rewrites what it does not need to. What each
file's ids name (utterance, recording, speaker) comes from :mod:`asr.data.files`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from asr.data.files import FORMATS, utt2spk_to_spk2utt
from asr.data.kaldi import c_sort_key, read_kaldi_map, write_kaldi_map
from asr.errors import DataDirError

log = logging.getLogger(__name__)

DERIVED = ("spk2utt",)  # rebuilt from utt2spk on every write
# Left where they are: markers, splits and backups are not data files.
IGNORED_PREFIXES = ("split", ".")


@dataclass
class DataFiles:
    """The Kaldi files of a data directory: ``{file name: {id: value as written}}``."""

    files: dict[str, dict[str, str]]
    source: Path | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> DataFiles:
        """Read every known file of ``path`` (strictly: an unreadable line is an error naming
        it). ``utt2spk`` is required, as in Kaldi."""
        path = Path(path)
        if not path.is_dir():
            raise DataDirError(f"{path}: data directory not found")
        if not (path / "utt2spk").is_file():
            raise DataDirError(f"{path}: no utt2spk; run `asr data fix {path}` to create one")
        files: dict[str, dict[str, str]] = {}
        notes: list[str] = []
        for item in sorted(path.iterdir()):
            name = item.name
            if name in FORMATS and name not in DERIVED and item.is_file():
                files[name] = read_kaldi_map(item, allow_empty_value=FORMATS[name].allow_empty)
            elif item.is_file() and not name.startswith(IGNORED_PREFIXES) and name not in DERIVED:
                notes.append(f"{item}: not a known Kaldi data file, not carried over")
        return cls(files, path, notes)

    # ---- what the files describe

    @property
    def has_segments(self) -> bool:
        return "segments" in self.files

    @property
    def utt2spk(self) -> dict[str, str]:
        return self.files["utt2spk"]

    @property
    def utterances(self) -> list[str]:
        return sorted(self.utt2spk, key=c_sort_key)

    def recording_of(self, utt: str) -> str:
        if self.has_segments:
            return self.files["segments"][utt].split()[0]
        return utt

    def index_of(self, name: str) -> str:
        index = FORMATS[name].index
        return "utt" if index == "reco" and not self.has_segments else index

    # ---- transformations (each returns a new DataFiles)

    def select(self, utts: Iterable[str]) -> DataFiles:
        """The files restricted to ``utts`` (and the recordings and speakers they use)."""
        keep = set(utts) & set(self.utt2spk)
        recordings = {self.recording_of(u) for u in keep if u in self.files.get("segments", {})}
        speakers = {self.utt2spk[u] for u in keep}
        wanted = {"utt": keep, "reco": recordings, "spk": speakers}
        files = {
            name: {k: v for k, v in entries.items() if k in wanted[self.index_of(name)]}
            for name, entries in self.files.items()
        }
        return DataFiles(files, self.source)

    def rename(
        self,
        utt: Callable[[str], str] = str,
        spk: Callable[[str], str] = str,
        reco: Callable[[str], str] = str,
    ) -> DataFiles:
        """Ids mapped by ``utt``/``spk``/``reco`` wherever they appear (first field, the
        speaker in utt2spk, the recording in segments)."""
        maps = {"utt": utt, "spk": spk, "reco": reco if self.has_segments else utt}
        files: dict[str, dict[str, str]] = {}
        for name, entries in self.files.items():
            key_map = maps[self.index_of(name)]
            files[name] = {key_map(k): v for k, v in entries.items()}
        files["utt2spk"] = {k: spk(v) for k, v in files["utt2spk"].items()}
        if "segments" in files:
            renamed = {}
            for k, v in files["segments"].items():
                rec, rest = v.split(None, 1)
                renamed[k] = f"{reco(rec)} {rest}"
            files["segments"] = renamed
        return DataFiles(files, self.source)

    def durations(self, allow_pipes: bool = False) -> dict[str, float]:
        """Seconds per utterance: utt2dur when present, else segments and audio headers."""
        if "utt2dur" in self.files:
            return {k: float(v) for k, v in self.files["utt2dur"].items()}
        from asr.data.durations import utterance_durations

        return utterance_durations(self, allow_pipes)

    # ---- output

    def write(self, dest: str | Path) -> Path:
        """Write every file (and spk2utt) to ``dest``, replacing a previous data directory
        there as a whole: readers never see a mix of old and new files."""
        dest = Path(dest)
        if self.source is not None and dest.resolve() == self.source.resolve():
            raise DataDirError(f"{dest}: the output must differ from the input directory")
        _check_replaceable(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            self.write_files(tmp)
            replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    def write_files(self, dest: Path) -> None:
        for name, entries in self.files.items():
            write_kaldi_map(dest / name, entries)
        spk2utt = utt2spk_to_spk2utt(self.utt2spk)
        write_kaldi_map(dest / "spk2utt", {s: " ".join(us) for s, us in spk2utt.items()})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_replaceable(dest: Path) -> None:
    if not dest.exists():
        return
    if not dest.is_dir():
        raise DataDirError(f"{dest}: exists and is not a directory")
    names = {p.name for p in dest.iterdir()}
    if names and not names & {"utt2spk", "wav.scp", "text", "segments", "feats.scp"}:
        raise DataDirError(
            f"{dest}: exists and is not a data directory; choose another output directory"
        )


def replace_dir(new: Path, dest: Path) -> None:
    """Put directory ``new`` at ``dest``, removing what was there, with one rename each.
    ``new`` gets the permissions of a directory made normally (temporary ones are private)."""
    os.chmod(new, 0o777 & ~_umask())
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
        old.rmdir()
        dest.rename(old)
        new.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(dest)


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
        durations = data.durations(allow_pipes)
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
    from asr.data.files import format_float

    durations = data.durations(allow_pipes)
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
