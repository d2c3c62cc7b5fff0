"""Many files transcribed in batches of similar length: the loop that a single model and a
combination of models share (:class:`FileBatcher`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asr.audio import header_duration, load_audio, resample
from asr.errors import AsrError

if TYPE_CHECKING:
    from asr.decode import Decoder
    from asr.transcript import Result

DEFAULT_CHUNK_LENGTH = 30.0  # seconds per network pass for long recordings (asr.longform)


class FileBatcher:
    """``transcribe`` and ``transcribe_files`` for a class with ``sample_rate``,
    ``transcribe_signals(signals, decoder)`` (short inputs, batched) and ``_transcribe_long(
    audio, ...)`` (a path or an array at ``sample_rate`` longer than ``chunk_length``)."""

    sample_rate: int

    def transcribe(self, audio: str | Path | np.ndarray, sample_rate: int | None = None, *,
                   chunk_length: float = DEFAULT_CHUNK_LENGTH, batch_size: int = 8,
                   decoder: Decoder | str | None = None,
                   progress: Callable[[float], None] | None = None) -> Result:
        """Transcribe a file path (``"-"``: standard input) or a 1-D float array at
        ``sample_rate`` (default: the model's).

        Inputs longer than ``chunk_length`` seconds go to ``_transcribe_long`` (``batch_size``
        chunks per network pass); a long file is then read block by block, never whole.
        ``progress(seconds)`` is called as audio is consumed.
        """
        long = {"chunk_length": chunk_length, "batch_size": batch_size, "decoder": decoder,
                "progress": progress}
        if isinstance(audio, (str, Path)):
            duration = header_duration(audio)
            if duration is not None and duration > chunk_length:
                return self._transcribe_long(audio, **long)
            signal, _ = load_audio(audio, self.sample_rate)
        else:
            signal = np.asarray(audio, dtype=np.float32)
            if signal.ndim != 1 or signal.size == 0:
                raise ValueError("expected a non-empty 1-D array of samples")
            signal = resample(signal, sample_rate or self.sample_rate, self.sample_rate)
        if len(signal) > chunk_length * self.sample_rate:
            return self._transcribe_long(signal, **long)
        result = self.transcribe_signals([signal], decoder)[0]
        if progress is not None:
            progress(result.duration)
        return result

    def transcribe_files(self, paths: Iterable[str | Path], *, batch_size: int = 8,
                         chunk_length: float = DEFAULT_CHUNK_LENGTH,
                         decoder: Decoder | str | None = None,
                         progress: Callable[[float], None] | None = None,
                         ) -> Iterator[tuple[str, Result | AsrError]]:
        """Transcribe many files; yield ``(path, Result)`` or ``(path, AsrError)`` in input
        order. Short files are read a window at a time and batched by length (``batch_size``
        per network pass), so memory does not grow with the number of files; long ones are
        chunked (:meth:`transcribe`)."""
        window: list[str] = []
        for path in paths:
            window.append(str(path))
            if len(window) >= 4 * batch_size:
                yield from self._window(window, batch_size, chunk_length, decoder, progress)
                window = []
        if window:
            yield from self._window(window, batch_size, chunk_length, decoder, progress)

    def _window(self, paths: list[str], batch_size: int, chunk_length: float,
                decoder: Decoder | str | None, progress: Callable[[float], None] | None,
                ) -> Iterator[tuple[str, Result | AsrError]]:
        done: dict[int, Result | AsrError] = {}
        short: dict[int, np.ndarray] = {}
        for i, path in enumerate(paths):
            try:
                duration = header_duration(path)
                if duration is not None and duration > chunk_length:
                    continue  # long: transcribed on its own below, in input order
                signal, _ = load_audio(path, self.sample_rate)
                if len(signal) > chunk_length * self.sample_rate:
                    done[i] = self.transcribe(signal, chunk_length=chunk_length,
                                              batch_size=batch_size, decoder=decoder,
                                              progress=progress)
                else:
                    short[i] = signal
            except AsrError as exc:
                done[i] = exc
        # Batches of similar length waste little compute on padding.
        order = sorted(short, key=lambda i: len(short[i]))
        for start in range(0, len(order), batch_size):
            ids = order[start : start + batch_size]
            for i, result in zip(ids, self.transcribe_signals([short[i] for i in ids], decoder),
                                 strict=True):
                done[i] = result
                if progress is not None:
                    progress(result.duration)
        for i, path in enumerate(paths):
            if i not in done:
                try:
                    done[i] = self.transcribe(path, chunk_length=chunk_length,
                                              batch_size=batch_size, decoder=decoder,
                                              progress=progress)
                except AsrError as exc:
                    done[i] = exc
            yield path, done.pop(i)

