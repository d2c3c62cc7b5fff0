"""Audio input: decode a file, mix to mono, resample, normalise to float32 in [-1, 1].

Decoding goes through soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, Opus, MP3, NIST SPHERE, ...);
resampling through soxr at high quality. torchaudio's own I/O is not used (removed in 2.9).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from asr.errors import AudioError


def to_mono(samples: np.ndarray, channel: int | None = None) -> np.ndarray:
    """``(time,)`` or ``(time, channels)`` -> ``(time,)``: the mean of the channels or one of them."""
    if samples.ndim == 1:
        return samples
    if channel is not None:
        if not 0 <= channel < samples.shape[1]:
            raise AudioError(f"channel {channel} requested but the audio has {samples.shape[1]}")
        return samples[:, channel]
    return samples.mean(axis=1)


def resample(samples: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a ``(time,)`` float32 signal with soxr (high quality)."""
    if orig_rate == target_rate or samples.size == 0:
        return samples
    return soxr.resample(samples, orig_rate, target_rate, quality="HQ").astype(np.float32)


def load_audio(
    path: str | Path, sample_rate: int | None = None, channel: int | None = None
) -> tuple[np.ndarray, int]:
    """Read ``path`` as mono float32 ``(time,)``; resample to ``sample_rate`` when given.

    Returns the samples and their rate. Raises :class:`AudioError` naming the file when it is
    missing, not a regular file, not decodable audio, or empty.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = str(exc).split(":")[-1].strip() or "unknown format"
        raise AudioError(
            f"{path}: cannot decode audio ({reason}); expected WAV, FLAC, OGG, MP3 or SPHERE"
        ) from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    samples = to_mono(np.asarray(samples, dtype=np.float32), channel)
    if samples.size == 0:
        raise AudioError(f"{path}: contains no audio samples")
    if not np.all(np.isfinite(samples)):
        # Float WAVs can carry NaN/inf; they would poison every feature frame they touch.
        raise AudioError(f"{path}: contains NaN or infinite samples")
    if sample_rate is not None and rate != sample_rate:
        samples = resample(samples, rate, sample_rate)
        rate = sample_rate
    return samples, int(rate)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the header alone (no decoding)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{path}: cannot read audio header ({exc})") from None
    return info.frames / info.samplerate
