"""asr.inference and asr.writers: the recognizer on a tiny untrained model, word timing, output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.config import load_config
from asr.decode import GreedyHypothesis
from asr.errors import AudioError
from asr.inference import Recognizer, load_model
from asr.model import build_model
from asr.modeldir import load_model_dir, save_model_dir
from asr.text import Tokenizer
from asr.transcript import Result, Segment, Word, make_segments
from asr.writers import format_result, write_result


@pytest.fixture
def recognizer(tmp_path: Path) -> Recognizer:
    torch.manual_seed(0)
    config = load_config(
        overrides=[
            "features.sample_rate=8000",
            "features.n_mels=10",
            "model.num_layers=1",
            "model.hidden_size=8",
            "model.frame_stack=3",
            "features.cmvn=utterance",
        ]
    )
    tokenizer = Tokenizer.build(["yes no"])
    model = build_model(config.model, config.features, len(tokenizer))
    path = save_model_dir(tmp_path / "model", model, config, tokenizer)
    return Recognizer(load_model_dir(path), torch.device("cpu"))


def test_frame_seconds(recognizer: Recognizer) -> None:
    # 10 ms hop x 3-fold frame stacking.
    assert recognizer.frame_seconds == pytest.approx(0.03)


def test_batch_equals_alone(recognizer: Recognizer) -> None:
    rng = np.random.default_rng(0)
    signals = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (4000, 1234, 2500)]
    log_probs, lengths = recognizer.log_probs(signals)
    assert lengths.tolist() == [-(-(1 + n // 80) // 3) for n in (4000, 1234, 2500)]
    batched = recognizer.transcribe_signals(signals)
    # Batched and alone take other FFT/GEMM/LSTM kernels. Each path is within float32
    # rounding of exact: per value ~eps per term along the network's longest chain of sums,
    # front end (log2 256 + 3) + CMVN (3) + frame-stacked BiLSTM pre-activation (30 + 8 + 1)
    # + output (16 + 1) + log_softmax (8) ~ 77 terms, relative to |log-prob| (the LSTM's
    # forget gates < 1 keep earlier steps' rounding from adding up), so the two agree to
    # twice that. A padded frame leaking into an utterance moves its log-probs by >~ 1e-2.
    bound = 2 * 77 * 2.0**-24 * log_probs.abs().max().item()
    for i, signal in enumerate(signals):
        alone_lp, alone_len = recognizer.log_probs([signal])
        assert (log_probs[i, : lengths[i]] - alone_lp[0]).abs().max().item() <= bound
        alone = recognizer.transcribe_signals([signal])[0]
        # Text, words and times are discrete (argmax frames); confidences are means of
        # posteriors p = exp(log-prob) <= 1, so they move by <= bound too.
        assert (alone.text, alone.duration) == (batched[i].text, batched[i].duration)
        assert [(w.word, w.start, w.end) for w in alone.words] == [(w.word, w.start, w.end) for w in batched[i].words]
        assert [w.confidence for w in alone.words] == pytest.approx([w.confidence for w in batched[i].words], abs=bound)
        assert alone.alternatives == batched[i].alternatives == []  # greedy: no n-best scores
        assert alone.segments == batched[i].segments
        assert alone.duration == pytest.approx(len(signal) / 8000)


def test_transcribe_file_and_array_agree(recognizer: Recognizer, tmp_path: Path, make_tone) -> None:
    signal = make_tone(0.6, 16000, 440.0)
    path = tmp_path / "a.wav"
    sf.write(path, signal, 16000, subtype="FLOAT")
    from_file = recognizer.transcribe(path)  # resampled 16 kHz -> 8 kHz on load
    from_array = recognizer.transcribe(signal, sample_rate=16000)
    assert from_file.duration == pytest.approx(0.6, abs=1e-3)
    assert from_file.text == from_array.text
    with pytest.raises(ValueError, match="non-empty 1-D"):
        recognizer.transcribe(np.zeros((2, 10), dtype=np.float32))


def test_words_split_on_space_with_times(recognizer: Recognizer) -> None:
    tok = recognizer.tokenizer
    ids = tok.encode("yes no")
    space = tok.index["<space>"]
    frames = [0, 1, 2, 4, 6, 7]
    hyp = GreedyHypothesis(ids, frames, 0.0)
    posteriors = torch.full((10, len(tok)), 0.1)
    for t, f in zip(ids, frames, strict=True):
        posteriors[f, t] = 0.5 if t != space else 0.9
    posteriors[7, ids[-1]] = 0.7
    words = recognizer._words(hyp, posteriors)
    assert words == [Word("yes", 0.0, 0.09, 0.5), Word("no", 0.18, 0.24, 0.6)]


def test_load_model_resolves_store(recognizer: Recognizer, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("ASR_MODEL", str(recognizer.loaded.path))
    loaded = load_model(device="cpu")
    assert loaded.loaded.path == recognizer.loaded.path
    assert loaded.tokenizer.tokens == recognizer.tokenizer.tokens


def test_writers(tmp_path: Path) -> None:
    result = Result("yes no", 1.5, [Word("yes", 0.0, 0.3, 0.9), Word("no", 0.6, 0.9, 0.8)])
    assert format_result(result, "txt") == "yes no\n"
    data = json.loads(format_result(result, "json"))
    assert data == {
        "text": "yes no",
        "duration": 1.5,
        "words": [
            {"word": "yes", "start": 0.0, "end": 0.3, "confidence": 0.9},
            {"word": "no", "start": 0.6, "end": 0.9, "confidence": 0.8},
        ],
        "segments": [{"start": 0.0, "end": 0.9, "text": "yes no"}],
    }
    path = write_result(result, "/audio/utt 1.flac", tmp_path / "out", "json")
    assert path == tmp_path / "out" / "utt 1.json"
    assert json.loads(path.read_text()) == data
    with pytest.raises(ValueError, match="unknown output format 'docx'"):
        format_result(result, "docx")


def test_segments_split_at_pauses_and_length() -> None:
    words = [Word("a", 0.0, 0.5, 1.0), Word("b", 0.7, 1.0, 1.0), Word("c", 2.5, 3.0, 1.0)]
    assert make_segments("a b c", words, 4.0) == [Segment(0.0, 1.0, "a b"), Segment(2.5, 3.0, "c")]
    # No word times: one segment over the whole recording; nothing said: none.
    assert make_segments("a b", [], 2.0) == [Segment(0.0, 2.0, "a b")]
    assert make_segments("", [], 2.0) == []
    # 40 s of speech without a 1 s pause is split at its widest gaps, every piece <= 15 s.
    many = [Word(f"w{i}", i * 1.0, i * 1.0 + 0.8 - (0.3 if i == 20 else 0), 1.0) for i in range(40)]
    segments = make_segments("", many, 41.0)
    assert len(segments) >= 3 and all(s.end - s.start <= 15.0 for s in segments)
    assert " ".join(s.text for s in segments) == " ".join(w.word for w in many)
    assert any(s.end == many[20].end for s in segments)  # the widest gap is a cut


def test_transcribe_files_keeps_order_and_reports_errors(recognizer: Recognizer, tmp_path: Path,
                                                         make_tone) -> None:
    paths = []
    for i, seconds in enumerate([0.9, 0.2, 0.5, 0.3, 0.7]):
        path = tmp_path / f"t{i}.wav"
        sf.write(path, make_tone(seconds, 8000, 300.0 + 100 * i), 8000)
        paths.append(str(path))
    paths.insert(2, str(tmp_path / "missing.wav"))
    seen: list[float] = []
    out = list(recognizer.transcribe_files(paths, batch_size=2, progress=seen.append))
    assert [p for p, _ in out] == paths
    assert isinstance(out[2][1], AudioError) and "no such file" in str(out[2][1])
    for path, result in out:
        if path.endswith("missing.wav"):
            continue
        alone = recognizer.transcribe(path)
        assert result.text == alone.text and result.duration == alone.duration
    assert sum(seen) == pytest.approx(0.9 + 0.2 + 0.5 + 0.3 + 0.7, abs=1e-3)
