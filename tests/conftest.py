"""Shared fixtures: synthetic audio, the shared corpora (skipped cleanly when absent), tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.model.lstm import cpu_runs_bf16_lstm

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FSDD_RECORDINGS = SHARED_DATA / "fsdd" / "recordings"
YESNO_WAVES = SHARED_DATA / "yesno" / "waves_yesno"


def tone(
    seconds: float = 0.5, sample_rate: int = 16000, freq: float = 440.0, amplitude: float = 0.5
) -> np.ndarray:
    """A float32 sine tone."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def make_tone():
    """The :func:`tone` helper, for tests that need their own signals."""
    return tone


@pytest.fixture
def tiny_wav(tmp_path: Path) -> Path:
    """0.5 s of a 440 Hz tone, 16 kHz mono PCM_16."""
    path = tmp_path / "tone.wav"
    sf.write(path, tone(0.5, 16000), 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared corpus not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fsdd_recordings() -> Path:
    if not FSDD_RECORDINGS.is_dir() or not any(FSDD_RECORDINGS.glob("*.wav")):
        pytest.skip(f"FSDD recordings not present at {FSDD_RECORDINGS}")
    return FSDD_RECORDINGS


@pytest.fixture(scope="session")
def yesno_waves() -> Path:
    if not YESNO_WAVES.is_dir() or not any(YESNO_WAVES.glob("*.wav")):
        pytest.skip(f"yesno corpus not present at {YESNO_WAVES}")
    return YESNO_WAVES


@pytest.fixture
def seeded() -> None:
    """Make torch's global RNG (model init) reproducible inside a test."""
    torch.manual_seed(0)


requires_cpu_bf16_lstm = pytest.mark.skipif(
    not cpu_runs_bf16_lstm(), reason="this CPU's oneDNN has no bfloat16 LSTM (needs AVX-512)"
)
