"""asr.longform: chunked inference with overlap, stitched by time, searched in pieces."""

from __future__ import annotations

from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transcribe_utils import make_model_dir, one_thread  # noqa: F401 - fixture

from asr import longform
from asr.audio import read_blocks
from asr.inference import Recognizer, load_model
from asr.text import Tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory) -> Recognizer:
    return load_model(str(make_model_dir(tmp_path_factory.mktemp("m") / "model")), device="cpu")


@pytest.fixture(scope="module")
def speech(fsdd_recordings: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """40 FSDD recordings and their concatenation with 0.5 s pauses (about 40 s, 8 kHz)."""
    files = sorted(fsdd_recordings.glob("*_jackson_*.wav"))[:40]
    signals = [sf.read(f, dtype="float32")[0] for f in files]
    gap = np.zeros(4000, dtype=np.float32)
    return signals, np.concatenate([x for s in signals for x in (s, gap)])


def test_plan_is_on_the_output_frame_grid(recognizer: Recognizer) -> None:
    plan = longform.plan_chunks(recognizer, 10.0)
    assert plan.frame_samples == 240  # 80-sample hop x 3-fold stacking
    assert plan.chunk_samples == 79_920  # 333 frames of 30 ms
    assert plan.overlap_frames == 111  # a third of the chunk, under the 4 s default
    assert longform.plan_chunks(recognizer, 30.0).overlap_seconds == pytest.approx(4.0, abs=0.03)
    with pytest.raises(ValueError):
        longform.plan_chunks(recognizer, 0.0)


@pytest.mark.parametrize("chunk", [6.0, 12.0])
def test_stitched_log_probs_equal_the_whole_recording(recognizer: Recognizer, speech, chunk) -> None:
    _, signal = speech
    whole, _ = recognizer.log_probs([signal])
    plan = longform.plan_chunks(recognizer, chunk)
    parts = list(longform.stitched_log_probs(recognizer, longform.array_blocks(signal, plan),
                                             plan, batch_size=3))
    firsts = [first for first, _ in parts]
    assert firsts[0] == 0
    for (first, frames), following in zip(parts, firsts[1:], strict=False):
        assert first + frames.shape[0] == following  # every frame exactly once, in order
    stitched = torch.cat([frames for _, frames in parts])
    assert stitched.shape == whole[0].shape
    # Every kept frame has >= overlap/2 of context on both sides: posteriors barely move.
    # (This untrained model amplifies its LSTM state 15-fold, so a few frames near the cuts
    # move more than a trained model's do; the digits model's differ by < 0.004.)
    moved = (stitched.exp() - whole[0].exp()).abs().max(dim=-1).values
    assert (moved < 0.01).float().mean().item() >= 0.95
    assert (stitched.argmax(-1) == whole[0].argmax(-1)).float().mean().item() >= 0.99


def test_file_blocks_and_array_blocks_agree(recognizer: Recognizer, speech, tmp_path: Path) -> None:
    _, signal = speech
    path = tmp_path / "long.wav"
    sf.write(path, signal, 8000, subtype="FLOAT")
    plan = longform.plan_chunks(recognizer, 6.0)
    from_file = list(read_blocks(path, plan.chunk_seconds, plan.overlap_seconds, 8000))
    from_array = list(longform.array_blocks(signal, plan))
    assert [b.start for b in from_file] == [b.start for b in from_array]
    for a, b in zip(from_file, from_array, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)


@pytest.mark.parametrize("chunk", [8.0, 15.0])
def test_chunked_transcript_equals_unchunked(recognizer: Recognizer, speech, tmp_path: Path,
                                             chunk: float) -> None:
    _, signal = speech
    path = tmp_path / "long.wav"
    sf.write(path, signal, 8000, subtype="FLOAT")
    whole = recognizer.transcribe_signals([signal])[0]
    seen: list[float] = []
    chunked = recognizer.transcribe(path, chunk_length=chunk, batch_size=2, progress=seen.append)
    assert len(whole.text.split()) >= 5  # the comparison has words to compare
    assert jiwer.wer(whole.text, chunked.text) <= 0.01
    assert chunked.duration == pytest.approx(len(signal) / 8000, abs=1e-3)
    assert sum(seen) == pytest.approx(chunked.duration, abs=0.1)
    starts = [w.start for w in chunked.words]
    assert starts == sorted(starts) and chunked.words[-1].end <= chunked.duration + 0.05
    if chunked.text == whole.text:
        # Word times agree with the unchunked ones (same frames, shifted back in place).
        assert [w.start for w in chunked.words] == [w.start for w in whole.words]
    assert " ".join(s.text for s in chunked.segments) == chunked.text


def test_concatenated_recordings_in_short_chunks(recognizer: Recognizer, speech) -> None:
    """40 recordings joined with pauses, in 5 s chunks (a cut every few words): the words of
    one unchunked pass, within 1 % WER. (Against per-recording transcripts, an untrained
    model's words change with the context across recording edges: test_transcribe_trained.py
    checks that with a trained model.)"""
    _, signal = speech
    long = recognizer.transcribe(signal, sample_rate=8000, chunk_length=5.0, batch_size=4)
    whole = recognizer.transcribe_signals([signal])[0]
    assert len(whole.text.split()) >= 5
    assert jiwer.wer(whole.text, long.text) <= 0.01
    assert long.duration == pytest.approx(len(signal) / 8000, abs=1e-3)


def _path_log_probs(path: list[int], vocab: int) -> torch.Tensor:
    """``(frames, vocab)`` log-probs whose best token at frame t is ``path[t]`` (p = 0.9)."""
    probs = torch.full((len(path), vocab), 0.1 / (vocab - 1))
    probs[torch.arange(len(path)), torch.tensor(path)] = 0.9
    return probs.log()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=400),
       st.integers(min_value=5, max_value=60))
def test_piecewise_search_equals_whole_search(path: list[int], piece: int) -> None:
    """Cutting the stitched frames into pieces never changes greedy search's words."""
    tokenizer = Tokenizer.build(["ab cd"])  # <blank> <unk> <space> a b c d
    recognizer = _FakeRecognizer(tokenizer)
    log_probs = _path_log_probs(path, len(tokenizer))
    whole = recognizer.results(log_probs[None], torch.tensor([len(path)]), [1.0])[0]
    stream = [(i, log_probs[i : i + 7]) for i in range(0, len(path), 7)]
    pieced = longform.transcribe_stitched(recognizer, stream, lambda: 1.0, piece)
    # Force-cut pieces (no pause for 6 pieces) may split a word; otherwise equal.
    if len(path) < 6 * piece:
        assert pieced.text == " ".join(whole.text.split())
        assert [w.start for w in pieced.words] == [w.start for w in whole.words]


class _FakeRecognizer(Recognizer):
    """A Recognizer without a network: only the search and word-timing half."""

    def __init__(self, tokenizer: Tokenizer) -> None:  # noqa: D107 - no model to load
        self.tokenizer = tokenizer
        self.frame_seconds = 0.03
        self.decoder = None
        self._named = {}


def test_cut_point_prefers_pauses_between_words() -> None:
    tokenizer = Tokenizer.build(["ab cd"])
    a, b, space = tokenizer.index["a"], tokenizer.index["b"], tokenizer.index["<space>"]
    # a _ _ _ _ _ b (long blank run inside a word) then b _ <space> _ a: the boundary wins.
    path = [a, 0, 0, 0, 0, 0, b, 0, space, 0, a, a]
    cut = longform._cut_point(_path_log_probs(path, len(tokenizer)), 0, tokenizer)
    assert cut in (7, 8, 9)
    inside_word = [a, 0, 0, 0, b, b]
    assert longform._cut_point(_path_log_probs(inside_word, len(tokenizer)), 0, tokenizer) is None
    forced = longform._cut_point(_path_log_probs(inside_word, len(tokenizer)), 0, tokenizer, force=True)
    assert forced == 2

