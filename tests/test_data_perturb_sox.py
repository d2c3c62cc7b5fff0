"""In-process speed perturbation against sox itself (skipped where sox is not installed:
tools/install_sox.sh)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from asr.audio import speed_perturb
from asr.data.wav_audio import load_wav_entry
from asr.data.wavscp import WavPipe, parse_wav_entry

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")


@pytest.mark.parametrize("factor", ["0.9", "1.1"])
def test_kaldi_speed_line_matches_sox(yesno_waves: Path, factor: str) -> None:
    wav = sorted(yesno_waves.glob("*.wav"))[0]
    line = f"sox -t wav {wav} -t wav - speed {factor} |"
    ours, rate = load_wav_entry(parse_wav_entry(line))  # in process
    theirs, sox_rate = load_wav_entry(WavPipe(line[:-1].strip()))  # sox through a pipe
    original, _ = load_wav_entry(str(wav))
    assert rate == sox_rate
    assert len(ours) == len(theirs) == len(speed_perturb(original, float(factor)))
    error = np.sqrt(np.mean((ours - theirs) ** 2) / np.mean(theirs**2))
    assert error < 2e-3  # what is left is sox's 16-bit output quantisation
