"""Kaldi data directories: ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``.

Files are UTF-8, one ``<id> <value>`` per line, sorted in C-locale (byte) order as Kaldi's
``utils/validate_data_dir.sh`` requires.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from asr.errors import DataDirError
from asr.utils import atomic_write_text


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    wav: str  # a path (Kaldi pipes and ark offsets are not read here)
    text: str
    speaker: str


def c_sort_key(key: str) -> bytes:
    """Kaldi sorts with ``LC_ALL=C``: by UTF-8 bytes."""
    return key.encode("utf-8")


def read_kaldi_map(path: str | Path, allow_empty_value: bool = False) -> dict[str, str]:
    """Read ``<id> <value...>`` lines into an ordered dict; errors name the file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataDirError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataDirError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = raw[: exc.start].count(b"\n") + 1
        raise DataDirError(f"{path}:{lineno}: not valid UTF-8") from None
    entries: dict[str, str] = {}
    for lineno, line in enumerate(content.split("\n"), 1):
        if line.endswith("\r"):
            raise DataDirError(f"{path}:{lineno}: CRLF line ending; convert the file with dos2unix")
        if not line.strip():
            if lineno == content.count("\n") + 1:
                continue  # the empty string after the final newline
            raise DataDirError(f"{path}:{lineno}: blank line")
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if not value and not allow_empty_value:
            raise DataDirError(f"{path}:{lineno}: '{key}' has no value")
        if key in entries:
            raise DataDirError(f"{path}:{lineno}: duplicate id '{key}'")
        entries[key] = value
    return entries


def write_kaldi_map(path: str | Path, entries: dict[str, str] | Iterable[tuple[str, str]]) -> None:
    """Write ``<id> <value>`` lines sorted in C-locale order, atomically."""
    items = entries.items() if isinstance(entries, dict) else entries
    lines = sorted(items, key=lambda kv: c_sort_key(kv[0]))
    for key, _ in lines:
        if not key or any(ch.isspace() for ch in key):
            raise DataDirError(f"{path}: invalid id {key!r} (ids may not be empty or hold spaces)")
    atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in lines))


@dataclass
class DataDir:
    path: Path
    utterances: list[Utterance]

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances}, key=c_sort_key)


def read_data_dir(path: str | Path, require_text: bool = True) -> DataDir:
    """Read ``wav.scp`` (+ ``text``, ``utt2spk`` when present). Utterances without audio, or
    (when ``require_text``) without a transcript, are errors naming the utterance."""
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"{path}: data directory not found")
    wavs = read_kaldi_map(path / "wav.scp")
    for utt_id, wav in wavs.items():
        if wav.endswith("|"):
            raise DataDirError(
                f"{path / 'wav.scp'}: utterance '{utt_id}' is a command pipe ('{wav}'); "
                "pipes are not run by this reader: convert the audio to files first"
            )
    texts: dict[str, str] = {}
    if (path / "text").exists():
        texts = read_kaldi_map(path / "text", allow_empty_value=True)
        missing = [u for u in texts if u not in wavs]
        if missing:
            raise DataDirError(
                f"{path / 'text'}: {len(missing)} utterance(s) have no entry in wav.scp, "
                f"first '{missing[0]}'; run a fix-up that drops them"
            )
    elif require_text:
        raise DataDirError(f"{path}: no 'text' file (transcripts are needed here)")
    utt2spk = read_kaldi_map(path / "utt2spk") if (path / "utt2spk").exists() else {}
    utterances = []
    for utt_id, wav in wavs.items():
        if require_text and utt_id not in texts:
            raise DataDirError(f"{path / 'text'}: no transcript for utterance '{utt_id}'")
        wav_path = Path(wav)
        if not wav_path.is_absolute():
            wav_path = Path.cwd() / wav_path  # Kaldi paths are relative to the recipe directory
        utterances.append(
            Utterance(utt_id, str(wav_path), texts.get(utt_id, ""), utt2spk.get(utt_id, utt_id))
        )
    utterances.sort(key=lambda u: c_sort_key(u.utt_id))
    return DataDir(path, utterances)


def write_data_dir(path: str | Path, utterances: Iterable[Utterance]) -> DataDir:
    """Write ``wav.scp``, ``text``, ``utt2spk`` and ``spk2utt`` for ``utterances``."""
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
    write_kaldi_map(path / "wav.scp", [(u.utt_id, u.wav) for u in utts])
    write_kaldi_map(path / "text", [(u.utt_id, u.text) for u in utts])
    write_kaldi_map(path / "utt2spk", [(u.utt_id, u.speaker) for u in utts])
    spk2utt: dict[str, list[str]] = {}
    for utt in utts:
        spk2utt.setdefault(utt.speaker, []).append(utt.utt_id)
    write_kaldi_map(path / "spk2utt", {s: " ".join(us) for s, us in spk2utt.items()})
    return DataDir(path, utts)
