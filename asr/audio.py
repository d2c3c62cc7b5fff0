"""Audio input: decode, mix to mono, resample, and normalise to float32 in [-1, 1].

Sources and formats

- Files that libsndfile reads (through soundfile): WAV (8/16/24/32-bit PCM, 32/64-bit float,
  mu-law, A-law), FLAC, OGG/Vorbis, Opus, MP3, NIST SPHERE (uncompressed), AIFF, AU, CAF, W64.
  The content decides, not the extension: a FLAC file named ``.wav`` is read as FLAC.
- Other containers (m4a, mp4, webm, mkv, ...) go through the ``ffmpeg`` command when it is on
  ``PATH``; when it is not, the error says to install it.
- Headerless PCM needs an explicit :class:`RawFormat` (``"s16le:16000"``, ``"f32le:8000:2"``).
- ``"-"`` is standard input (read into memory, then decoded as above).

What comes out: mono float32 ``(samples,)``. Channels are averaged, or one ``channel`` is
kept; the rate becomes ``sample_rate`` through soxr (high quality). Integer samples are scaled
by ``1 / 2**(bits-1)`` (libsndfile's convention). Float files whose peak exceeds 1 are scaled
down by their peak (one warning), so every sample is in [-1, 1].

Bad input (each is an :class:`AudioError` whose one line names the file):

===========================================  ==================================================
input                                        result
===========================================  ==================================================
missing path, directory, 0-byte file         error
header only (zero samples)                   error "contains no audio samples"
digital silence, clipped audio, 1 sample     read as is (the features stay finite)
NaN or inf samples (float files)             error naming how many and the first time
truncated header, random bytes               error "cannot decode audio", with ffmpeg's verdict
                                             when ffmpeg is installed
text or HTML saved as ``.wav``               error saying it is text/HTML (a failed download?)
m4a/mp4/webm without ffmpeg                  error naming the container and "install ffmpeg"
truncated data (header longer than file)     the samples that are there (libsndfile's choice)
===========================================  ==================================================

Long recordings can be read block by block with :func:`read_blocks` without holding the whole
file in memory.
"""

from __future__ import annotations

import io
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from asr.errors import AudioError

log = logging.getLogger(__name__)

STDIN = "-"
FFMPEG_HINT = "install ffmpeg (apt-get install ffmpeg, or tools/install_ffmpeg.sh) to read it"
_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II",
                   "MPEG_LAYER_III")

# encoding name -> (libsndfile subtype, endianness)
_RAW_ENCODINGS: dict[str, tuple[str, str]] = {
    "s8": ("PCM_S8", "FILE"),
    "u8": ("PCM_U8", "FILE"),
    "s16le": ("PCM_16", "LITTLE"),
    "s16be": ("PCM_16", "BIG"),
    "s24le": ("PCM_24", "LITTLE"),
    "s24be": ("PCM_24", "BIG"),
    "s32le": ("PCM_32", "LITTLE"),
    "s32be": ("PCM_32", "BIG"),
    "f32le": ("FLOAT", "LITTLE"),
    "f32be": ("FLOAT", "BIG"),
    "f64le": ("DOUBLE", "LITTLE"),
    "f64be": ("DOUBLE", "BIG"),
    "mulaw": ("ULAW", "FILE"),
    "alaw": ("ALAW", "FILE"),
}


@dataclass(frozen=True)
class RawFormat:
    """How to read headerless PCM: sample encoding, rate and channel count.

    Spelled ``ENCODING:RATE[:CHANNELS]`` on command lines, e.g. ``s16le:16000`` or
    ``f32le:8000:2``; encodings are ffmpeg's names: s8, u8, s16le, s16be, s24le, s24be, s32le,
    s32be, f32le, f32be, f64le, f64be, mulaw, alaw.
    """

    encoding: str
    sample_rate: int
    channels: int = 1

    def __post_init__(self) -> None:
        if self.encoding not in _RAW_ENCODINGS:
            raise AudioError(
                f"raw format: unknown encoding {self.encoding!r}; use one of "
                f"{', '.join(_RAW_ENCODINGS)}"
            )
        if self.sample_rate <= 0 or self.channels <= 0:
            raise AudioError(f"raw format: rate and channels must be positive ({self})")

    @classmethod
    def parse(cls, spec: str) -> RawFormat:
        """``"s16le:16000"`` or ``"s16le:16000:2"`` -> :class:`RawFormat`."""
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts[1:]):
            raise AudioError(
                f"raw format {spec!r}: expected ENCODING:RATE[:CHANNELS], e.g. s16le:16000"
            )
        return cls(parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else 1)

    def soundfile_args(self) -> dict[str, Any]:
        subtype, endian = _RAW_ENCODINGS[self.encoding]
        return {
            "format": "RAW",
            "subtype": subtype,
            "endian": endian,
            "samplerate": self.sample_rate,
            "channels": self.channels,
        }


@dataclass
class AudioBlock:
    """One block of a long recording: ``samples`` (float32 ``(n,)``) starting at sample
    ``start`` of the (resampled) signal."""

    start: int
    samples: np.ndarray
    sample_rate: int

    @property
    def start_seconds(self) -> float:
        return self.start / self.sample_rate


def to_mono(samples: np.ndarray, channel: int | None = None) -> np.ndarray:
    """``(time,)`` or ``(time, channels)`` -> ``(time,)``: the mean of the channels or one of them."""
    if samples.ndim == 1:
        if channel not in (None, 0):
            raise AudioError(f"channel {channel} requested but the audio has 1")
        return samples
    if channel is not None:
        if not 0 <= channel < samples.shape[1]:
            raise AudioError(f"channel {channel} requested but the audio has {samples.shape[1]}")
        return np.ascontiguousarray(samples[:, channel])
    if samples.shape[1] == 1:
        return samples[:, 0]
    return samples.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a ``(time,)`` float32 signal with soxr (high quality)."""
    if orig_rate == target_rate or samples.size == 0:
        return samples
    return soxr.resample(samples, orig_rate, target_rate, quality="HQ").astype(np.float32)


def speed_perturb(samples: np.ndarray, factor: float) -> np.ndarray:
    """sox's ``speed FACTOR``: play ``(time,)`` float32 ``samples`` ``factor`` times faster,
    changing pitch and tempo together, at the same sample rate.

    The signal is treated as if recorded at ``factor`` times its rate and resampled back (soxr,
    high quality), so the output has about ``len(samples) / factor`` samples.
    """
    if not math.isfinite(factor) or factor <= 0:
        raise ValueError(f"speed factor must be a positive number, got {factor}")
    samples = np.asarray(samples, dtype=np.float32)
    if factor == 1.0 or samples.size == 0:
        return samples
    # Only the ratio matters to soxr; 1000 keeps both rates well inside its range.
    return soxr.resample(samples, 1000.0 * factor, 1000.0, quality="HQ").astype(np.float32)


def ffmpeg_path() -> str | None:
    """The ``ffmpeg`` executable on ``PATH``, or None."""
    return shutil.which("ffmpeg")


# -- recognising what a file is when libsndfile refuses it ---------------------------------------


def _sniff(head: bytes) -> str | None:
    """A short description of non-audio or non-libsndfile content, from the first bytes."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")):
        return "an HTML/XML page, not audio (a failed download?)"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "an MP4/M4A container"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "a WebM/Matroska container"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return None  # a WAV libsndfile could not read: codec or header problem, keep its reason
    sample = head[:512]
    if sample and all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return "a text file, not audio"
    return None


def _reason(exc: Exception) -> str:
    text = getattr(exc, "error_string", None) or str(exc)
    text = text.strip().rstrip(".")
    return text.splitlines()[0] if text else "unknown format"


@contextmanager
def _ffmpeg_wav(source: Path | bytes, name: str, what: str | None) -> Iterator[Path]:
    """Decode ``source`` with ffmpeg into a temporary float WAV and yield its path.

    Raises :class:`AudioError` naming ``name`` when ffmpeg is absent or fails.
    """
    ffmpeg = ffmpeg_path()
    if ffmpeg is None:
        kind = what or "not a format libsndfile reads"
        raise AudioError(
            f"{name}: cannot decode audio ({kind}); libsndfile reads WAV, FLAC, OGG/Vorbis, "
            f"Opus, MP3 and NIST SPHERE; for m4a, mp4, webm and other containers {FFMPEG_HINT}"
        )
    with tempfile.TemporaryDirectory(prefix="asr-ffmpeg-") as tmp:
        if isinstance(source, bytes):
            src = Path(tmp) / "input"
            src.write_bytes(source)
        else:
            src = source
        out = Path(tmp) / "decoded.wav"
        cmd = [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(src), "-vn",
               "-acodec", "pcm_f32le", "-f", "wav", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        if proc.returncode != 0 or not out.is_file():
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            detail = lines[-1] if lines else f"exit code {proc.returncode}"
            kind = f"{what}; " if what else ""
            raise AudioError(f"{name}: cannot decode audio ({kind}ffmpeg: {detail})")
        yield out


# -- opening ---------------------------------------------------------------------------------------


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if size == 0:
        raise AudioError(f"{path}: empty file (0 bytes), not audio")


def _read_stdin() -> bytes:
    data = sys.stdin.buffer.read()
    if not data:
        raise AudioError("<stdin>: no data on standard input")
    return data


@contextmanager
def open_audio(
    path: str | Path, raw_format: RawFormat | None = None
) -> Iterator[tuple[sf.SoundFile, str]]:
    """Open ``path`` (or ``"-"``: standard input) for decoding; yield the SoundFile and the
    name to use in messages. Falls back to ffmpeg for what libsndfile cannot read."""
    is_stdin = str(path) == STDIN
    name = "<stdin>" if is_stdin else str(path)
    source: Any
    data: bytes | None = None
    if is_stdin:
        data = _read_stdin()
        source = io.BytesIO(data)
    else:
        path = Path(path)
        _check_path(path)
        source = str(path)
    kwargs = raw_format.soundfile_args() if raw_format is not None else {}
    handle: sf.SoundFile | None = None
    failure: Exception | None = None
    try:
        handle = sf.SoundFile(source, **kwargs)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        failure = exc
    except OSError as exc:
        raise AudioError(f"{name}: cannot read file ({exc.strerror or exc})") from None
    if handle is not None:
        with handle:
            yield handle, name
        return
    assert failure is not None
    if raw_format is not None:
        raise AudioError(f"{name}: cannot read as raw {raw_format.encoding} ({_reason(failure)})")
    head = data[:4096] if data is not None else _head(Path(path))
    what = _sniff(head)
    if what is not None and what.endswith(("not audio", "download?)")):
        raise AudioError(f"{name}: {what}")
    reason = what or f"libsndfile: {_reason(failure)}"
    with _ffmpeg_wav(data if data is not None else Path(path), name, reason) as wav:
        with sf.SoundFile(str(wav)) as decoded:
            yield decoded, name


def _head(path: Path, size: int = 4096) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def _check_finite(samples: np.ndarray, name: str, rate: int, offset: int = 0) -> None:
    finite = np.isfinite(samples)
    if not finite.all():
        # Float WAVs can carry NaN/inf; they would poison every feature frame they touch.
        bad = np.flatnonzero(~finite)
        first = (offset + int(bad[0])) / rate
        raise AudioError(
            f"{name}: contains NaN or infinite samples ({bad.size}, first at {first:.3f} s); "
            "repair or drop the recording"
        )


def _is_float(handle: sf.SoundFile) -> bool:
    return handle.subtype in _FLOAT_SUBTYPES


def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    channel: int | None = None,
    raw_format: RawFormat | str | None = None,
) -> tuple[np.ndarray, int]:
    """Read ``path`` (``"-"``: standard input) as mono float32 ``(time,)`` in [-1, 1];
    resample to ``sample_rate`` when given.

    Returns the samples and their rate. Raises :class:`AudioError` naming the file for every
    case in the module's bad-input table.
    """
    if isinstance(raw_format, str):
        raw_format = RawFormat.parse(raw_format)
    with open_audio(path, raw_format) as (handle, name):
        try:
            samples = handle.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{name}: cannot decode audio ({_reason(exc)})") from None
        rate = int(handle.samplerate)
        is_float = _is_float(handle)
    try:
        samples = to_mono(samples, channel)
    except AudioError as exc:
        raise AudioError(f"{name}: {exc}") from None
    if samples.size == 0:
        raise AudioError(f"{name}: contains no audio samples")
    _check_finite(samples, name, rate)
    if is_float:
        peak = float(np.max(np.abs(samples)))
        if peak > 1.0:
            log.warning("%s: float samples peak at %.3g; scaled into [-1, 1]", name, peak)
            samples = samples / np.float32(peak)
    if sample_rate is not None and rate != sample_rate:
        samples = resample(samples, rate, sample_rate)
        rate = sample_rate
    return samples, rate


def read_blocks(
    path: str | Path,
    block_seconds: float,
    overlap_seconds: float = 0.0,
    sample_rate: int | None = None,
    channel: int | None = None,
    raw_format: RawFormat | str | None = None,
) -> Iterator[AudioBlock]:
    """Yield a long recording as blocks of ``block_seconds`` that overlap by
    ``overlap_seconds`` (each block starts ``block - overlap`` after the previous one; the
    last may be shorter), without loading the whole file.

    The blocks are what :func:`load_audio` returns, cut up: same mono mix, same soxr
    resampling (streamed, so there are no seams at block edges), same float peak scaling
    (float files are scanned once for their peak first). Standard input is read into memory.
    """
    if isinstance(raw_format, str):
        raw_format = RawFormat.parse(raw_format)
    if block_seconds <= 0 or not 0 <= overlap_seconds < block_seconds:
        raise ValueError("need block_seconds > 0 and 0 <= overlap_seconds < block_seconds")
    with open_audio(path, raw_format) as (handle, name):
        in_rate = int(handle.samplerate)
        out_rate = sample_rate or in_rate
        block = max(1, round(block_seconds * out_rate))
        overlap = min(block - 1, round(overlap_seconds * out_rate))
        hop = block - overlap
        read_size = max(4096, round(block * in_rate / out_rate))
        scale = np.float32(1.0)
        if _is_float(handle) and handle.seekable():
            scale = _float_scale(handle, name, channel, read_size)
        stream = (
            soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
            if in_rate != out_rate
            else None
        )
        buffer = np.zeros(0, dtype=np.float32)
        start = 0
        emitted = False
        offset = 0
        while True:
            try:
                chunk = handle.read(read_size, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"{name}: cannot decode audio ({_reason(exc)})") from None
            last = len(chunk) < read_size
            try:
                mono = to_mono(chunk, channel)
            except AudioError as exc:
                raise AudioError(f"{name}: {exc}") from None
            _check_finite(mono, name, in_rate, offset)
            offset += len(mono)
            if scale != 1.0:
                mono = mono * scale
            if stream is not None:
                mono = stream.resample_chunk(mono, last=last)
            buffer = np.concatenate([buffer, mono.astype(np.float32, copy=False)])
            while len(buffer) >= block:
                yield AudioBlock(start, buffer[:block].copy(), out_rate)
                emitted = True
                buffer = buffer[hop:]
                start += hop
            if last:
                break
        if offset == 0:
            raise AudioError(f"{name}: contains no audio samples")
        if len(buffer) > (overlap if emitted else 0):
            yield AudioBlock(start, buffer.copy(), out_rate)


def _float_scale(handle: sf.SoundFile, name: str, channel: int | None, read_size: int) -> np.float32:
    """1 / peak for float files whose peak exceeds 1 (one streaming pass), else 1."""
    peak = 0.0
    for chunk in handle.blocks(blocksize=read_size, dtype="float32", always_2d=True):
        mono = to_mono(chunk, channel)
        finite = mono[np.isfinite(mono)]
        if finite.size:
            peak = max(peak, float(np.max(np.abs(finite))))
    handle.seek(0)
    if peak > 1.0:
        log.warning("%s: float samples peak at %.3g; scaled into [-1, 1]", name, peak)
        return np.float32(1.0 / peak)
    return np.float32(1.0)


def audio_duration(path: str | Path, raw_format: RawFormat | str | None = None) -> float:
    """Duration in seconds from the header alone (no decoding); raw PCM from the file size."""
    if isinstance(raw_format, str):
        raw_format = RawFormat.parse(raw_format)
    if raw_format is not None:
        subtype = raw_format.soundfile_args()["subtype"]
        width = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3,
                 "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}[subtype]
        size = os.path.getsize(path)
        return size // (width * raw_format.channels) / raw_format.sample_rate
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{path}: cannot read audio header ({_reason(exc)})") from None
    return info.frames / info.samplerate


def header_duration(path: str | Path) -> float | None:
    """Seconds of audio from the file header, or None where only decoding can tell (standard
    input, ffmpeg containers, broken files: :func:`load_audio` then names the problem)."""
    if str(path) == STDIN:
        return None
    try:
        return audio_duration(path)
    except (AudioError, OSError):
        return None
