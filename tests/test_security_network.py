"""Nothing reaches the network except an explicit download stage: the offline recipe stages
(data preparation from a local corpus, training, decoding with parallel jobs, scoring) and the
library calls behind them run with every outgoing connection refused and recorded."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

# Loaded by every Python process started with this directory on PYTHONPATH: refuses and
# records any connection that is not a local (Unix-domain) socket, and any name lookup.
SITECUSTOMIZE = '''
import os, socket

def _refuse(what):
    with open(os.environ["ASR_NETWORK_LOG"], "a") as log:
        log.write(f"{os.getpid()} {what}\\n")
    raise OSError(101, f"network access blocked by the test: {what}")

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex

def connect(self, address):
    if self.family == socket.AF_UNIX:
        return _connect(self, address)
    _refuse(f"connect {address!r}")

def connect_ex(self, address):
    if self.family == socket.AF_UNIX:
        return _connect_ex(self, address)
    _refuse(f"connect_ex {address!r}")

socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.getaddrinfo = lambda *a, **k: _refuse(f"getaddrinfo {a[:2]!r}")
socket.create_connection = lambda address, *a, **k: _refuse(f"create_connection {address!r}")
'''

TINY_YESNO = """features:
  sample_rate: 8000
  n_mels: 23
  cmvn: global
tokenizer:
  type: word
model:
  num_layers: 1
  hidden_size: 8
  frame_stack: 3
train:
  epochs: 1
  max_frames_per_batch: 4000
  max_utts_per_batch: 8
  early_stop_patience: 0
  device: cpu
  num_threads: 1
"""


def _offline_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = tmp_path / "offline_site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "network.log"
    log.write_text("")
    env = {**os.environ, "PYTHONPATH": f"{site}:{ROOT}", "ASR_NETWORK_LOG": str(log),
           "OMP_NUM_THREADS": "1"}
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(proxy, None)
    return env, log


def test_the_blocker_blocks_and_records(tmp_path):
    env, log = _offline_env(tmp_path)
    code = "import urllib.request; urllib.request.urlopen('http://example.org', timeout=5)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "network access blocked" in proc.stderr
    assert "getaddrinfo" in log.read_text() or "connect" in log.read_text()


@pytest.mark.slow  # about 30 s on 2 cores: five Python processes each import torch
@pytest.mark.skipif(not (SHARED / "yesno" / "waves_yesno").is_dir(), reason="yesno corpus absent")
def test_yesno_recipe_stages_run_offline(tmp_path):
    """Stages 0 (data), 1 (train, tiny config), 2 (decode with 2 jobs + score) of the yes/no
    recipe, in a copy of the recipe so the source tree is not touched."""
    env, log = _offline_env(tmp_path)
    top = tmp_path / "tree"
    recipe = top / "recipes" / "yesno"
    recipe.mkdir(parents=True)
    for name in ("run.sh", "cmd.sh", "path.sh"):
        shutil.copy(ROOT / "recipes" / "yesno" / name, recipe / name)
    (recipe / "conf").mkdir()
    (recipe / "conf" / "train.yaml").write_text(TINY_YESNO)
    (top / ".venv").symlink_to(ROOT / ".venv")
    (top / "tools").symlink_to(ROOT / "tools")
    (top / "conf").symlink_to(ROOT / "conf")
    proc = subprocess.run(
        ["bash", str(recipe / "run.sh"), "--corpus-dir", str(SHARED / "yesno"), "--nj", "2"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (recipe / "exp" / "bilstm_ctc" / "final" / "model.pt").is_file()
    assert (recipe / "exp" / "bilstm_ctc" / "decode_test" / "wer").read_text().startswith("%WER")
    assert log.read_text() == ""  # not one connection attempted


@pytest.mark.skipif(not (SHARED / "fsdd" / "recordings").is_dir(), reason="FSDD corpus absent")
def test_digits_data_prep_runs_offline(tmp_path):
    """The digits recipe's stage 0 (``python -m asr.corpora.fsdd`` on a local corpus), small."""
    env, log = _offline_env(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "asr.corpora.fsdd", "--corpus-dir", str(SHARED / "fsdd"),
         "--out", str(tmp_path / "data"), "--num-train", "10", "--num-dev", "3", "--num-test", "3"],
        env=env, capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "data" / "test" / "wav.scp").is_file()
    assert log.read_text() == ""


def test_library_calls_run_offline(tmp_path, monkeypatch):
    """Train, decode, score, transcribe and load models in this process with sockets refused."""
    from faults_utils import make_data_dir, train_args

    attempts: list[str] = []

    def refuse(self, address):
        attempts.append(repr(address))
        raise OSError(101, "network access blocked by the test")

    def lookup(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError(101, "network access blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))

    import asr
    from asr.cli import main as asr_main

    train = make_data_dir(tmp_path / "train", 8)
    exp = tmp_path / "exp"
    assert asr_main.main(train_args(train, exp, None, "train.epochs=1")) == 0
    out = tmp_path / "decode"
    assert asr_main.main(["decode", "--model", str(exp / "final"), "--data", str(train), "--out",
                          str(out), "--device", "cpu"]) == 0
    assert asr_main.main(["score", "--ref", str(train / "text"), "--hyp", str(out / "text")]) == 0
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(4000, dtype=np.float32), 8000)
    recognizer = asr.load_model(str(exp / "final"), device="cpu")
    assert isinstance(recognizer.transcribe(str(wav)).text, str)
    assert attempts == []


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("suffix", [".wav", ".m3u8", ".mp4"])
def test_audio_files_that_point_at_urls_are_not_fetched(tmp_path, suffix):
    """A playlist disguised as a recording, naming an http URL, is not followed by the ffmpeg
    fallback: a local server sees no connection and the file is reported as unreadable."""
    import threading

    from asr.audio import load_audio
    from asr.errors import AudioError

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    connections: list[tuple] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, address = server.accept()
            except TimeoutError:
                continue
            connections.append(address)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    playlist = tmp_path / f"recording{suffix}"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
                        f"http://127.0.0.1:{port}/x.wav\n#EXT-X-ENDLIST\n")
    try:
        with pytest.raises(AudioError, match=str(playlist)):
            load_audio(playlist, 16000)
    finally:
        done.set()
        thread.join()
        server.close()
    assert connections == []
