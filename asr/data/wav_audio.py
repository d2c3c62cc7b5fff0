"""The audio of ``wav.scp`` entries (:mod:`asr.data.wavscp`) and of utterances, whole or cut
from their recording by a segment.

Commands are run here: a command without shell syntax is run directly (no shell); one with
pipes, redirections, variables or globs goes through ``sh -c``, as Kaldi's own readers do.
Callers check :func:`asr.data.wavscp.needs_shell` against :func:`asr.data.wavscp.pipes_allowed`
before reading untrusted data.
"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

import kaldiio
import numpy as np

from asr.audio import audio_duration, load_audio, resample, speed_perturb, to_mono
from asr.data.utterance import Utterance
from asr.data.wavscp import (
    WavArk,
    WavEntry,
    WavPath,
    WavPipe,
    WavSpeed,
    format_wav_entry,
    parse_wav_entry,
)
from asr.errors import AudioError

# Kaldi's extract-segments tolerates segments that end this far after the recording.
MAX_OVERSHOOT_S = 0.5

_SHELL_SYNTAX = re.compile(r"[|;&<>()$`*?~\[\]{}!\\]")


def run_command(command: str) -> bytes:
    """Run a ``wav.scp`` command and return its stdout; a failure is an AudioError."""
    if _SHELL_SYNTAX.search(command):
        argv = ["sh", "-c", command]  # Kaldi runs these through popen(), i.e. /bin/sh
    else:
        argv = shlex.split(command)
    try:
        result = subprocess.run(argv, capture_output=True, check=False)
    except OSError as exc:
        raise AudioError(f"'{command} |': cannot run ({exc.strerror})") from None
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {lines[-1]}" if lines else ""
        raise AudioError(f"'{command} |' failed with exit code {result.returncode}{detail}")
    return result.stdout


def _load_bytes(data: bytes, name: str, sample_rate: int | None) -> tuple[np.ndarray, int]:
    """Decode a command's output with :func:`asr.audio.load_audio` (all its formats and
    checks), through a temporary file; errors name the command instead of that file."""
    with tempfile.NamedTemporaryFile(prefix="asr-pipe-", suffix=".audio") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            return load_audio(tmp.name, sample_rate)
        except AudioError as exc:
            raise AudioError(str(exc).replace(tmp.name, name)) from None


def _load_ark(entry: WavArk) -> tuple[np.ndarray, int]:
    where = format_wav_entry(entry)
    if not Path(entry.path).is_file():
        raise AudioError(f"{entry.path}: no such file (wav.scp entry '{where}')")
    try:
        loaded = kaldiio.load_mat(where)
    except Exception as exc:  # kaldiio raises many kinds on a bad offset or archive
        raise AudioError(f"{where}: cannot read a WAV record ({exc})") from None
    if not isinstance(loaded, tuple):
        raise AudioError(f"{where}: holds a matrix, not a WAV record (a feats.scp entry?)")
    rate, data = loaded
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.integer):
        samples = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    else:
        samples = data.astype(np.float32)
    samples = to_mono(samples)
    if samples.size == 0:
        raise AudioError(f"{where}: contains no audio samples")
    return samples, int(rate)


def load_wav_entry(entry: WavEntry | str, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples ``(time,)`` of a ``wav.scp`` entry and their rate (``sample_rate``
    when given). Commands are run: check :func:`needs_shell` against the user's permission
    before calling this with untrusted data."""
    if isinstance(entry, str):
        entry = parse_wav_entry(entry)
    if isinstance(entry, WavPath):
        return load_audio(entry.path, sample_rate)
    if isinstance(entry, WavArk):
        samples, rate = _load_ark(entry)
    elif isinstance(entry, WavPipe):
        return _load_bytes(run_command(entry.command), f"'{entry.command} |'", sample_rate)
    else:
        samples, rate = load_wav_entry(entry.source)
        samples = speed_perturb(samples, entry.factor)
    if sample_rate is not None and rate != sample_rate:
        samples, rate = resample(samples, rate, sample_rate), sample_rate
    return samples, rate


def entry_duration(entry: WavEntry | str, allow_pipes: bool = False) -> float | None:
    """Duration in seconds, from the header where there is one; ``None`` when it would take
    running a command that is not allowed."""
    if isinstance(entry, str):
        entry = parse_wav_entry(entry)
    if isinstance(entry, WavPath):
        return audio_duration(entry.path)
    if isinstance(entry, WavSpeed):
        source = entry_duration(entry.source, allow_pipes)
        return None if source is None else source / entry.factor
    if isinstance(entry, WavPipe) and not allow_pipes:
        return None
    samples, rate = load_wav_entry(entry)
    return len(samples) / rate


@functools.lru_cache(maxsize=1)
def _recording(wav: str, sample_rate: int | None) -> tuple[np.ndarray, int]:
    # Segments of one recording are adjacent in utterance order: keep the last one decoded.
    return load_wav_entry(wav, sample_rate)


def cut_segment(
    samples: np.ndarray, rate: int, start: float, end: float, name: str
) -> np.ndarray:
    """Samples ``[start, end)`` seconds of ``(time,)`` ``samples``; ``end == -1`` is the end.

    A segment may end up to :data:`MAX_OVERSHOOT_S` after the recording (it is clipped), as
    Kaldi's ``extract-segments`` allows; beyond that it is an AudioError naming ``name``.
    """
    total = len(samples)
    first = int(round(start * rate))
    last = total if end == -1 else int(round(end * rate))
    if last > total:
        if (last - total) / rate > MAX_OVERSHOOT_S:
            raise AudioError(
                f"{name}: segment ends at {end:g} s, after the end of its recording "
                f"({total / rate:.2f} s); fix the segments file"
            )
        last = total
    if first >= last:
        raise AudioError(
            f"{name}: segment [{start:g}, {end:g}] s holds no audio (recording is "
            f"{total / rate:.2f} s)"
        )
    return samples[first:last].copy()


def load_utterance_audio(utt: Utterance, sample_rate: int | None = None) -> np.ndarray:
    """Mono float32 ``(time,)`` samples of an utterance: its whole ``wav.scp`` entry, or its
    segment of the recording."""
    if utt.segment is None:
        return load_wav_entry(utt.wav, sample_rate)[0]
    samples, rate = _recording(utt.wav, sample_rate)
    seg = utt.segment
    return cut_segment(samples, rate, seg.start, seg.end, f"utterance '{utt.utt_id}'")
