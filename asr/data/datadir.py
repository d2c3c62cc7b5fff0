"""Kaldi data directories as utterances: read ``wav.scp`` (+ ``segments``, ``text``,
``utt2spk``) into :class:`Utterance` records, and write them back with ``spk2utt``.

Every file is a Kaldi table (:mod:`asr.data.tables`) of a known type (:mod:`asr.data.files`);
errors name the file and line. Whole directories as sets of files (subset, combine, ...) are
:mod:`asr.data.datafiles`.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from pathlib import Path

from asr.data.files import read_file, utt2spk_to_spk2utt, write_file
from asr.data.tables import c_sort_key, read_kaldi_lines, read_kaldi_map, write_kaldi_map
from asr.data.utterance import RecordingSegment, Utterance
from asr.data.wavscp import PIPES_ENV, needs_shell, parse_wav_entry, pipes_allowed, resolve_paths
from asr.errors import DataDirError


@dataclass
class DataDir:
    """A data directory read into utterances (in C-locale order of their ids)."""

    path: Path
    utterances: list[Utterance]

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances}, key=c_sort_key)

    def refs(self, among: Container[str] | None = None) -> dict[str, str]:
        """Reference transcripts of the utterances (those ``among`` given ids); empty when the
        directory has no ``text``."""
        if not (self.path / "text").exists():
            return {}
        return {u.utt_id: u.text for u in self.utterances if among is None or u.utt_id in among}

    @property
    def utt2spk(self) -> dict[str, str]:
        return {u.utt_id: u.speaker for u in self.utterances}


def _read_recordings(path: Path, allow_pipes: bool | None) -> dict[str, str]:
    """wav.scp with plain paths made absolute; commands refused unless pipes are allowed."""
    scp = path / "wav.scp"
    recordings: dict[str, str] = {}
    for line in read_kaldi_lines(scp):
        entry = parse_wav_entry(line.value)
        if needs_shell(entry) and not pipes_allowed(allow_pipes):
            raise DataDirError(
                f"{scp}:{line.lineno}: '{line.key}' is read through a shell command "
                f"('{line.value}'); commands run only when allowed: pass --allow-pipes or set "
                f"{PIPES_ENV}=1"
            )
        recordings[line.key] = resolve_paths(entry, Path.cwd())
    return recordings


def read_data_dir(
    path: str | Path, require_text: bool = True, allow_pipes: bool | None = None
) -> DataDir:
    """Read ``wav.scp`` (+ ``segments``, ``text``, ``utt2spk`` when present).

    Utterances without audio, or (when ``require_text``) without a transcript, are errors naming
    the utterance. Relative paths are resolved against the current directory, as Kaldi does.
    Commands in ``wav.scp`` are refused unless ``allow_pipes`` (or ``ASR_ALLOW_PIPES=1``);
    Kaldi's own speed-perturbation lines (``sox ... speed F |``) are read in process and need
    no permission.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"{path}: data directory not found")
    recordings = _read_recordings(path, allow_pipes)
    segments: dict[str, RecordingSegment] | None = None
    if (path / "segments").exists():
        segments = read_file(path / "segments")
        lines = {line.key: line.lineno for line in read_kaldi_lines(path / "segments")}
        for utt_id, seg in segments.items():
            if seg.recording not in recordings:
                raise DataDirError(
                    f"{path / 'segments'}:{lines[utt_id]}: recording '{seg.recording}' of "
                    f"utterance '{utt_id}' is not in wav.scp; run `asr data fix {path}`"
                )
        utt_ids = list(segments)
    else:
        utt_ids = list(recordings)
    texts: dict[str, str] = {}
    if (path / "text").exists():
        texts = read_kaldi_map(path / "text", allow_empty_value=True)
        known = set(utt_ids)
        missing = [u for u in texts if u not in known]
        if missing:
            where = "segments" if segments is not None else "wav.scp"
            raise DataDirError(
                f"{path / 'text'}: {len(missing)} utterance(s) have no entry in {where}, "
                f"first '{missing[0]}'; run `asr data fix {path}` to drop them"
            )
    elif require_text:
        raise DataDirError(f"{path}: no 'text' file (transcripts are needed here)")
    utt2spk = read_file(path / "utt2spk") if (path / "utt2spk").exists() else {}
    utterances = []
    for utt_id in utt_ids:
        if require_text and utt_id not in texts:
            raise DataDirError(f"{path / 'text'}: no transcript for utterance '{utt_id}'")
        seg = segments[utt_id] if segments is not None else None
        wav = recordings[seg.recording] if seg is not None else recordings[utt_id]
        speaker = utt2spk.get(utt_id, utt_id)
        utterances.append(Utterance(utt_id, wav, texts.get(utt_id, ""), speaker, seg))
    utterances.sort(key=lambda u: c_sort_key(u.utt_id))
    return DataDir(path, utterances)


def write_data_dir(path: str | Path, utterances: Iterable[Utterance]) -> DataDir:
    """Write ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt`` (and ``segments`` when the
    utterances are cut from recordings) for ``utterances``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    utts = sorted(utterances, key=lambda u: c_sort_key(u.utt_id))
    ids = [u.utt_id for u in utts]
    if len(set(ids)) != len(ids):
        raise DataDirError(f"{path}: duplicate utterance ids")
    for utt in utts:
        # Kaldi requires speaker ids to be prefixes of utterance ids so that sorting agrees.
        if not utt.utt_id.startswith(utt.speaker):
            raise DataDirError(
                f"{path}: utterance id '{utt.utt_id}' does not start with its speaker id "
                f"'{utt.speaker}'"
            )
    with_segments = [u for u in utts if u.segment is not None]
    if with_segments and len(with_segments) != len(utts):
        raise DataDirError(
            f"{path}: some utterances have segments and others not; give every utterance a "
            "segment (start 0, end the recording's duration for whole recordings)"
        )
    if with_segments:
        recordings: dict[str, str] = {}
        for utt in utts:
            assert utt.segment is not None
            previous = recordings.setdefault(utt.segment.recording, utt.wav)
            if previous != utt.wav:
                raise DataDirError(
                    f"{path}: recording '{utt.segment.recording}' has two audio entries "
                    f"('{previous}' and '{utt.wav}')"
                )
        write_kaldi_map(path / "wav.scp", recordings)
        write_file(path / "segments", {u.utt_id: u.segment for u in utts})
    else:
        (path / "segments").unlink(missing_ok=True)
        write_kaldi_map(path / "wav.scp", [(u.utt_id, u.wav) for u in utts])
    write_kaldi_map(path / "text", [(u.utt_id, u.text) for u in utts])
    utt2spk = {u.utt_id: u.speaker for u in utts}
    write_kaldi_map(path / "utt2spk", utt2spk)
    write_file(path / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    return DataDir(path, utts)
