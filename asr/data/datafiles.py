"""Whole data directories as sets of Kaldi files: load, select, rename, write.

:class:`DataFiles` holds every known file of a directory with its values exactly as written,
so that subsetting, splitting or copying never rewrites what it does not need to. What each
file's ids name (utterance, recording, speaker) comes from :mod:`asr.data.files`; the
operations on whole directories are :mod:`asr.data.ops`, :mod:`asr.data.split` and
:mod:`asr.data.perturb`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from asr.data.files import FORMATS, utt2spk_to_spk2utt
from asr.data.tables import c_sort_key, read_kaldi_map, write_kaldi_map
from asr.errors import DataDirError

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
