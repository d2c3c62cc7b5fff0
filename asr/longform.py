"""Long recordings: chunked inference with overlap, stitched by time.

A recording longer than one chunk is read block by block (:func:`asr.audio.read_blocks`); each
block of ``chunk_length`` seconds overlaps the next by ``overlap`` seconds, and blocks go
through the network ``batch_size`` at a time. Block starts fall on the model's output-frame
grid (feature hop x subsampling), so output frame ``j`` of a block starting at sample ``s`` is
frame ``s / frame_samples + j`` of the whole recording. Each block keeps its frames up to the
middle of the overlap with the next block, where both have at least ``overlap / 2`` seconds of
context on either side; the kept frames tile the recording exactly once.

The stitched CTC log-probabilities ``(frames, vocab)`` are searched in pieces: once enough
frames are pending, they are cut in the middle of the longest run of blank or word-boundary
frames in the second half that lies between two words, and the part before the cut is decoded. A cut at a
blank frame between words cannot change greedy search's result, and memory holds a few chunks
of frames, never the whole recording.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from asr.audio import AudioBlock, read_blocks
from asr.transcript import Result, Word

if TYPE_CHECKING:
    from asr.decode import Decoder
    from asr.inference import Recognizer  # a type only: asr.inference imports this module
    from asr.text import Tokenizer

log = logging.getLogger(__name__)

DEFAULT_OVERLAP = 4.0  # seconds shared by neighbouring chunks: 2 s of context at each cut


@dataclass(frozen=True)
class ChunkPlan:
    """Chunk and overlap lengths in samples, both multiples of ``frame_samples`` (samples per
    model output frame)."""

    chunk_samples: int
    overlap_samples: int
    frame_samples: int
    sample_rate: int

    @property
    def chunk_seconds(self) -> float:
        return self.chunk_samples / self.sample_rate

    @property
    def overlap_seconds(self) -> float:
        return self.overlap_samples / self.sample_rate

    @property
    def overlap_frames(self) -> int:
        return self.overlap_samples // self.frame_samples

    @property
    def chunk_frames(self) -> int:
        return self.chunk_samples // self.frame_samples


def plan_chunks(recognizer: Recognizer, chunk_length: float,
                overlap: float | None = None) -> ChunkPlan:
    """Round ``chunk_length`` and ``overlap`` (seconds; default the smaller of 4 s and a
    third of the chunk) to whole output frames."""
    frame = int(recognizer.frontend.hop_length * recognizer.model.subsampling)
    rate = recognizer.sample_rate
    if chunk_length <= 0:
        raise ValueError(f"chunk length {chunk_length}: must be positive")
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP, chunk_length / 3)
    chunk = max(2, round(chunk_length * rate / frame)) * frame
    over = min(chunk // frame - 1, round(overlap * rate / frame)) * frame
    return ChunkPlan(chunk, max(0, over), frame, rate)


def _with_last(items: Iterable[AudioBlock]) -> Iterator[tuple[AudioBlock, bool]]:
    """Each block with whether it is the last (one block of look-ahead)."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True


def stitched_log_probs(recognizer: Recognizer, blocks: Iterable[AudioBlock], plan: ChunkPlan,
                       batch_size: int = 8) -> Iterator[tuple[int, torch.Tensor]]:
    """Run ``blocks`` (from :func:`asr.audio.read_blocks` with ``plan``'s lengths) through
    the model ``batch_size`` at a time; yield ``(first frame, (frames, vocab) log-probs)`` on
    the CPU, in order, covering every output frame of the recording once."""
    half = plan.overlap_frames // 2
    pending: list[tuple[AudioBlock, bool]] = []
    next_frame = 0

    def flush() -> Iterator[tuple[int, torch.Tensor]]:
        nonlocal next_frame
        log_probs, lengths = recognizer.log_probs([b.samples for b, _ in pending])
        log_probs = log_probs.detach().cpu()
        for i, (block, last) in enumerate(pending):
            first = block.start // plan.frame_samples
            count = int(lengths[i])
            stop = first + count if last else min(first + count,
                                                  first + plan.chunk_frames - plan.overlap_frames + half)
            lo, hi = next_frame - first, stop - first
            if hi > lo:
                yield next_frame, log_probs[i, lo:hi].clone()
                next_frame = stop

    for item in _with_last(blocks):
        pending.append(item)
        if len(pending) >= batch_size:
            yield from flush()
            pending = []
    if pending:
        yield from flush()


def _is_boundary(tokenizer: Tokenizer, prev: int | None, nxt: int | None) -> bool:
    """Whether a cut between tokens ``prev`` and ``nxt`` falls between two words."""
    if prev is None or nxt is None:
        return prev is None  # nothing before: any cut; nothing known after: not yet
    space = tokenizer.space_id
    if space is not None and space in (prev, nxt):
        return True
    return len(tokenizer.word_groups([prev, nxt])) == 2


def _cut_point(log_probs: torch.Tensor, lo: int, tokenizer: Tokenizer, force: bool = False,
               blank: int = 0) -> int | None:
    """A frame in ``[lo, len)`` of ``(frames, vocab)`` log-probs to cut at: the middle of the
    longest run of separator frames (best token the blank or the word boundary ``<space>``)
    that lies between two words.

    None when there is no such run (and ``force`` is false); with ``force``, the longest
    separator run (or the most blank-like frame) even inside a word.
    """
    path = log_probs.argmax(dim=-1).numpy()
    space = tokenizer.space_id
    separator = (path == blank) | (path == space) if space is not None else path == blank
    padded = np.concatenate([[False], separator[lo:], [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1]) + lo
    starts, ends = edges[::2], edges[1::2]
    if len(starts) == 0:
        return lo + int(log_probs[lo:, blank].argmax()) if force else None
    tokens = np.flatnonzero(path != blank)
    order = np.argsort(starts - ends, kind="stable")  # longest first
    for k in order:
        if ends[k] == len(path):
            continue  # what follows is not known yet
        if space is not None and (path[starts[k] : ends[k]] == space).any():
            return int((starts[k] + ends[k]) // 2)
        before = np.searchsorted(tokens, starts[k]) - 1
        after = np.searchsorted(tokens, ends[k])
        prev = int(path[tokens[before]]) if before >= 0 else None
        nxt = int(path[tokens[after]]) if after < len(tokens) else None
        if _is_boundary(tokenizer, prev, nxt):
            return int((starts[k] + ends[k]) // 2)
    if force:
        return int((starts[order[0]] + ends[order[0]]) // 2)
    return None


def transcribe_stitched(recognizer: Recognizer, pieces: Iterable[tuple[int, torch.Tensor]],
                        duration: Callable[[], float], piece_frames: int,
                        decoder: Decoder | str | None = None,
                        progress: Callable[[float], None] | None = None) -> Result:
    """Search stitched log-probs ``pieces`` (see :func:`stitched_log_probs`) in segments of
    about ``piece_frames`` frames cut at pauses; ``duration()`` gives the recording's length in
    seconds once every piece has been consumed."""
    step = recognizer.frame_seconds
    texts: list[str] = []
    words: list[Word] = []
    buffer: list[torch.Tensor] = []
    buffered = 0
    offset = 0  # global frame of buffer[0]

    def search(frames: torch.Tensor, first: int) -> None:
        lengths = torch.tensor([frames.shape[0]])
        (part,) = recognizer.results(frames[None], lengths, [frames.shape[0] * step], decoder)
        text = " ".join(part.text.split())  # a cut inside a <space> run leaves edge spaces
        if text:
            texts.append(text)
        shift = first * step
        for w in part.words:
            words.append(replace(w, start=round(w.start + shift, 3), end=round(w.end + shift, 3)))

    for _first, frames in pieces:
        buffer.append(frames)
        buffered += frames.shape[0]
        if progress is not None:
            progress(frames.shape[0] * step)
        if buffered >= 2 * piece_frames:
            joined = torch.cat(buffer)
            # Continuous speech with no pause between words for minutes: cut inside a word
            # rather than let the pending frames grow without bound.
            cut = _cut_point(joined, piece_frames, recognizer.tokenizer,
                             force=buffered >= 6 * piece_frames)
            if cut is None:
                buffer = [joined]
                continue
            search(joined[:cut], offset)
            offset += cut
            buffer, buffered = [joined[cut:]], joined.shape[0] - cut
    if buffered:
        search(torch.cat(buffer), offset)
    return Result(" ".join(texts), round(duration(), 3), words)


def transcribe_blocks(recognizer: Recognizer, blocks: Iterable[AudioBlock], plan: ChunkPlan,
                      batch_size: int = 8, decoder: Decoder | str | None = None,
                      progress: Callable[[float], None] | None = None) -> Result:
    """Transcribe a recording given as ``plan``-shaped blocks (see module docstring)."""
    samples = 0

    def counted() -> Iterator[AudioBlock]:
        nonlocal samples
        for block in blocks:
            samples = block.start + len(block.samples)
            yield block

    pieces = stitched_log_probs(recognizer, counted(), plan, batch_size)
    return transcribe_stitched(recognizer, pieces, lambda: samples / recognizer.sample_rate,
                               plan.chunk_frames, decoder, progress)


def transcribe_file(recognizer: Recognizer, path: str | Path, chunk_length: float,
                    overlap: float | None = None, batch_size: int = 8,
                    decoder: Decoder | str | None = None,
                    progress: Callable[[float], None] | None = None) -> Result:
    """Transcribe a long file, reading it block by block."""
    plan = plan_chunks(recognizer, chunk_length, overlap)
    blocks = read_blocks(path, plan.chunk_seconds, plan.overlap_seconds,
                         sample_rate=recognizer.sample_rate)
    return transcribe_blocks(recognizer, blocks, plan, batch_size, decoder, progress)


def array_blocks(signal: np.ndarray, plan: ChunkPlan) -> Iterator[AudioBlock]:
    """``(samples,)`` at the model's rate cut as :func:`asr.audio.read_blocks` cuts a file."""
    hop = plan.chunk_samples - plan.overlap_samples
    start = 0
    while True:
        yield AudioBlock(start, signal[start : start + plan.chunk_samples], plan.sample_rate)
        if start + plan.chunk_samples >= len(signal):
            return
        start += hop


def transcribe_array(recognizer: Recognizer, signal: np.ndarray, chunk_length: float,
                     overlap: float | None = None, batch_size: int = 8,
                     decoder: Decoder | str | None = None,
                     progress: Callable[[float], None] | None = None) -> Result:
    """Transcribe a long ``(samples,)`` float32 signal at the model's rate in chunks."""
    plan = plan_chunks(recognizer, chunk_length, overlap)
    return transcribe_blocks(recognizer, array_blocks(signal, plan), plan, batch_size, decoder,
                             progress)
