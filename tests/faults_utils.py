"""A tiny generated corpus and training settings for the fault-injection tests.

Each utterance spells a short string over the letters ``a``, ``b``, ``c``; every letter is a
tone of its own frequency, so a tiny model can learn something in a few updates.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 8000
FREQS = {"a": 300.0, "b": 900.0, "c": 1800.0}
TEXTS = ["ab", "ba", "abc", "cab", "a", "bca", "cc", "acb", "bb", "ca"]

# A few seconds of training on 2 CPU cores; one thread so that two runs are bit-identical.
TINY = [
    f"features.sample_rate={SAMPLE_RATE}",
    "features.n_mels=12",
    "model.num_layers=1",
    "model.hidden_size=8",
    "model.frame_stack=2",
    "train.device=cpu",
    "train.num_threads=1",
    "train.epochs=3",
    "train.max_frames_per_batch=400",
    "train.max_utts_per_batch=4",
    "train.early_stop_patience=0",
    "train.lr=0.01",
]


def spelled(text: str, seed: int) -> np.ndarray:
    """0.15 s of a tone per letter, with a little noise, float32 at :data:`SAMPLE_RATE`."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.15 * SAMPLE_RATE)) / SAMPLE_RATE
    parts = [0.4 * np.sin(2 * np.pi * FREQS[ch] * t) for ch in text]
    signal = np.concatenate(parts) + 0.01 * rng.standard_normal(len(t) * len(text))
    return signal.astype(np.float32)


def make_data_dir(root: Path, n: int, prefix: str = "spk1") -> Path:
    """A Kaldi data dir ``root`` of ``n`` utterances (``wav.scp``, ``text``, ``utt2spk``,
    ``spk2utt``) with WAV files in ``root/wav``."""
    wav_dir = root / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    ids = [f"{prefix}-u{i:03d}" for i in range(n)]
    texts = {utt: " ".join(TEXTS[i % len(TEXTS)]) for i, utt in enumerate(ids)}
    for i, utt in enumerate(ids):
        sf.write(wav_dir / f"{utt}.wav", spelled(texts[utt].replace(" ", ""), i), SAMPLE_RATE,
                 subtype="PCM_16")
    (root / "wav.scp").write_text("".join(f"{u} {wav_dir / u}.wav\n" for u in ids))
    (root / "text").write_text("".join(f"{u} {texts[u]}\n" for u in ids))
    (root / "utt2spk").write_text("".join(f"{u} {prefix}\n" for u in ids))
    (root / "spk2utt").write_text(f"{prefix} {' '.join(ids)}\n")
    return root


def train_args(train: Path, exp: Path, dev: Path | None = None, *extra: str) -> list[str]:
    """``asr train`` arguments for the tiny corpus."""
    args = ["train", "--train", str(train), "--exp-dir", str(exp), "--no-progress"]
    if dev is not None:
        args += ["--dev", str(dev)]
    for override in [*TINY, *extra]:
        args += ["--set", override]
    return args


def spawn(args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """``python -m asr.cli.main ARGS`` in the background (stdout+stderr to ``log``)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen([sys.executable, "-m", "asr.cli.main", *args], cwd=ROOT,
                                env=full_env, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log is not None:
            out.close()
