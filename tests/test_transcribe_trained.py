"""Long-form transcription with a trained model (slow: trains the yes/no recipe's model, about
a minute on 2 cores): the 29 yes/no test recordings joined into one recording and transcribed
in chunks score within 1 % absolute WER of the recordings transcribed one by one."""

from __future__ import annotations

from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf

from asr.cli.main import main as asr_main
from asr.corpora import yesno
from asr.data import read_data_dir
from asr.inference import load_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_concatenated_utterances_match_per_utterance(yesno_waves: Path, tmp_path: Path) -> None:
    data = yesno.prepare(yesno_waves, tmp_path / "data")
    exp = tmp_path / "exp"
    code = asr_main(["train", "--train", str(data["train"]), "--exp-dir", str(exp),
                     "--config", str(ROOT / "recipes" / "yesno" / "conf" / "train.yaml"),
                     "--set", "train.device=cpu", "--no-progress"])
    assert code == 0
    recognizer = load_model(str(exp / "final"), device="cpu")
    utts = read_data_dir(data["test"]).utterances
    refs = " ".join(u.text for u in utts)
    signals = [sf.read(u.wav, dtype="float32")[0] for u in utts]
    per_utt = " ".join(recognizer.transcribe(s, sample_rate=8000).text for s in signals)
    pause = np.zeros(4000, dtype=np.float32)
    joined = np.concatenate([x for s in signals for x in (s, pause)])  # about 190 s
    path = tmp_path / "joined.wav"
    sf.write(path, joined, 8000)
    long = recognizer.transcribe(path, chunk_length=20.0, batch_size=4)
    per_utt_wer, long_wer = jiwer.wer(refs, per_utt), jiwer.wer(refs, long.text)
    print(f"WER per utterance {per_utt_wer:.4f}, long-form {long_wer:.4f}")
    assert per_utt_wer < 0.10  # the model has learnt the task
    assert abs(long_wer - per_utt_wer) <= 0.01, (per_utt_wer, long_wer)
    assert len(long.segments) >= 2 and long.words[-1].end <= long.duration + 0.05
