"""``transcribe``: model resolution, outputs, bad input, exit codes (in-process CLI runs)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from transcribe_utils import make_model_dir, one_thread  # noqa: F401 - fixture

from asr import store
from asr.cli.transcribe import main
from asr.inference import load_model

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = 8000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def audio(tmp_path: Path, fsdd_recordings: Path) -> list[Path]:
    """Three short real recordings (one as FLAC) in the test's directory."""
    out = []
    for i, src in enumerate(sorted(fsdd_recordings.glob("*_theo_*.wav"))[:3]):
        signal, rate = sf.read(src, dtype="float32")
        path = tmp_path / (f"rec{i}.flac" if i == 2 else f"rec{i}.wav")
        sf.write(path, signal, rate)
        out.append(path)
    return out


@pytest.fixture(autouse=True)
def empty_store(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("ASR_MODEL", raising=False)
    return tmp_path / "store"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def expected(model_dir: Path, path: Path) -> str:
    return load_model(str(model_dir), device="cpu").transcribe(path).text


def test_one_file_prints_its_transcript(capsys, model_dir: Path, audio) -> None:
    code, out, err = run(capsys, "--model", model_dir, "--device", "cpu", audio[0])
    assert code == 0 and err == ""
    assert out == expected(model_dir, audio[0]) + "\n"


def test_several_files_are_prefixed_in_input_order(capsys, model_dir: Path, audio) -> None:
    code, out, _ = run(capsys, "--model", model_dir, "--device", "cpu", "--batch-size", "2",
                       audio[2], audio[0], audio[1])
    assert code == 0
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["rec2.flac", "rec0.wav", "rec1.wav"]
    assert lines[1] == f"rec0.wav: {expected(model_dir, audio[0])}"


def test_model_resolution_order(capsys, model_dir: Path, audio, empty_store: Path, monkeypatch) -> None:
    code, _, err = run(capsys, audio[0])
    assert code == 1
    assert err.count("\n") == 1 and "no model given and no default model installed" in err
    assert str(empty_store) in err and "make demo" in err
    store.install(model_dir, "tiny", make_default=True)
    assert run(capsys, "--device", "cpu", audio[0])[0] == 0  # the store's default
    monkeypatch.setenv("ASR_MODEL", "missing")
    code, _, err = run(capsys, "--device", "cpu", audio[0])  # $ASR_MODEL beats the default
    assert code == 1 and "model 'missing' is neither" in err and "installed: tiny" in err
    assert run(capsys, "--model", "tiny", "--device", "cpu", audio[0])[0] == 0  # --model first


def test_bad_models(capsys, model_dir: Path, audio, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--model", tmp_path, audio[0])
    assert code == 1 and err == f"transcribe: error: {tmp_path}: not a model directory (needs model.pt, config.yaml, tokens.txt)\n"
    old = tmp_path / "old"
    old.mkdir()
    for name in ("model.pt", "tokens.txt"):
        (old / name).write_bytes((model_dir / name).read_bytes())
    config = yaml.safe_load((model_dir / "config.yaml").read_text())
    config["asr"]["format_version"] = 99
    (old / "config.yaml").write_text(yaml.safe_dump(config))
    code, _, err = run(capsys, "--model", old, audio[0])
    assert code == 1 and "model format version 99" in err and "retrain or use a matching" in err
    assert err.count("\n") == 1


def test_bad_inputs_are_reported_and_the_rest_written(capsys, model_dir: Path, audio,
                                                     tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("hello, this is not audio\n")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), RATE)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(audio[0].read_bytes()[:30])
    folder = tmp_path / "folder"
    folder.mkdir()
    out_dir = tmp_path / "out"
    files = [audio[0], tmp_path / "missing.wav", folder, text, empty, corrupt, audio[1]]
    code, out, err = run(capsys, "--model", model_dir, "--device", "cpu", "-o", out_dir, *files)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[:5] == [
        f"transcribe: error: {tmp_path / 'missing.wav'}: no such file",
        f"transcribe: error: {folder}: is a directory, not an audio file",
        f"transcribe: error: {text}: a text file, not audio",
        f"transcribe: error: {empty}: contains no audio samples",
        lines[4],
    ]
    assert lines[4].startswith(f"transcribe: error: {corrupt}: cannot decode audio")
    assert lines[5].startswith("transcribe: 2 of 7 file(s) transcribed; 5 failed: ")
    assert sorted(p.name for p in out_dir.iterdir()) == ["rec0.txt", "rec1.txt"]
    assert (out_dir / "rec1.txt").read_text() == expected(model_dir, audio[1]) + "\n"


def test_fail_fast_stops_at_the_first_failure(capsys, model_dir: Path, audio, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "--model", model_dir, "--device", "cpu", "-o", out_dir,
                       "--fail-fast", audio[0], tmp_path / "nope.wav", audio[1])
    assert code == 1
    assert "1 of 3 file(s) transcribed; 1 failed" in err and "--fail-fast" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["rec0.txt"]


def test_every_format(capsys, model_dir: Path, audio, tmp_path: Path) -> None:
    out_dir = tmp_path / "all"
    code, out, _ = run(capsys, "--model", model_dir, "--device", "cpu", "-f", "all",
                       "-o", out_dir, audio[0])
    assert code == 0 and out == ""
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == [f"rec0.{ext}" for ext in ("ctm", "json", "srt", "tsv", "txt", "vtt")]
    data = json.loads((out_dir / "rec0.json").read_text())
    assert data["text"] == (out_dir / "rec0.txt").read_text().strip()
    assert data["duration"] == pytest.approx(sf.info(audio[0]).duration, abs=1e-3)
    assert (out_dir / "rec0.vtt").read_text().startswith("WEBVTT\n\n")
    assert (out_dir / "rec0.tsv").read_text().startswith("start\tend\ttext\n")
    ctm = (out_dir / "rec0.ctm").read_text().splitlines()
    assert len(ctm) == len(data["words"])
    assert all(line.startswith("rec0 1 ") for line in ctm)


def test_json_lines_for_several_files_on_stdout(capsys, model_dir: Path, audio) -> None:
    code, out, _ = run(capsys, "--model", model_dir, "--device", "cpu", "-f", "json", *audio[:2])
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows] == [str(a) for a in audio[:2]]
    assert {"text", "duration", "words", "segments"} <= set(rows[0])


def test_command_line_mistakes_exit_2(capsys, model_dir: Path, audio, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--model", str(model_dir), "-f", "docx", str(audio[0])])
    assert info.value.code == 2 and "invalid choice: 'docx'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["-f", "srt", str(audio[0]), str(audio[1])])
    assert info.value.code == 2 and "need --output-dir" in capsys.readouterr().err
    other = tmp_path / "sub"
    other.mkdir()
    (other / "rec0.wav").write_bytes(audio[0].read_bytes())
    with pytest.raises(SystemExit) as info:
        main(["-o", str(tmp_path / "o"), str(audio[0]), str(other / "rec0.wav")])
    assert info.value.code == 2 and "would both write rec0.*" in capsys.readouterr().err
    for bad in (["--chunk-length", "0.5"], ["--batch-size", "0"], ["--device", "tpu"]):
        with pytest.raises(SystemExit) as info:
            main([*bad, str(audio[0])])
        assert info.value.code == 2
    capsys.readouterr()


def test_lm_needs_a_search_that_uses_it(capsys, model_dir: Path, audio, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--model", model_dir, "--device", "cpu", "--lm", tmp_path / "x.arpa", audio[0])
    assert code == 1 and "--decoder beam or lexicon" in err


def test_beam_decoder_and_word_timestamps(capsys, model_dir: Path, audio) -> None:
    code, out, _ = run(capsys, "--model", model_dir, "--device", "cpu", "--decoder", "beam",
                       "--beam-size", "4", "-f", "srt", "--word-timestamps", audio[0])
    assert code == 0
    recognizer = load_model(str(model_dir), device="cpu")
    words = recognizer.transcribe(audio[0], decoder="beam").words
    assert out.count(" --> ") == len(words)


def test_long_file_is_chunked(capsys, model_dir: Path, fsdd_recordings: Path, tmp_path: Path) -> None:
    signal = np.concatenate([sf.read(f, dtype="float32")[0]
                             for f in sorted(fsdd_recordings.glob("*_lucas_*.wav"))[:30]])
    path = tmp_path / "long.wav"
    sf.write(path, signal, RATE)
    code, out, _ = run(capsys, "--model", model_dir, "--device", "cpu", "--chunk-length", "5",
                       "-f", "json", path)
    assert code == 0
    data = json.loads(out)
    assert data["duration"] == pytest.approx(len(signal) / RATE, abs=1e-3)
    assert data["segments"] and data["segments"][-1]["end"] <= data["duration"] + 0.05


def test_standard_input(model_dir: Path, audio) -> None:
    proc = subprocess.run([sys.executable, "-m", "asr.cli.transcribe", "--model", str(model_dir),
                           "--device", "cpu", "-"], input=audio[0].read_bytes(),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == expected(model_dir, audio[0]) + "\n"


def test_help_documents_resolution_and_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for needle in ("$ASR_MODEL", "$ASR_MODEL_DIR", "exit codes", "130 interrupted", "--fail-fast",
                   "--chunk-length", "--word-timestamps", "--language-model-weight"):
        assert needle in text


def test_quiet_hides_the_summary(capsys, model_dir: Path, audio, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--model", model_dir, "--device", "cpu", "-q", audio[0],
                       tmp_path / "nope.wav")
    assert code == 1
    assert err.splitlines() == [f"transcribe: error: {tmp_path / 'nope.wav'}: no such file"]


def test_progress_bar_on_a_terminal(capsys, model_dir: Path, audio, monkeypatch) -> None:
    fake = io.StringIO()
    fake.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stderr", fake)
    code = main(["--model", str(model_dir), "--device", "cpu", *map(str, audio)])
    assert code == 0
    assert "transcribe:" in fake.getvalue() and "s audio" in fake.getvalue()


@pytest.mark.gpu
def test_cuda_gives_the_cpu_transcripts(model_dir: Path, audio, fsdd_recordings: Path,
                                        tmp_path: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("CUDA is not usable here")
    cpu = load_model(str(model_dir), device="cpu")
    gpu = load_model(str(model_dir), device="cuda")
    assert gpu.device.type == "cuda"
    for path in audio:
        assert gpu.transcribe(path).text == cpu.transcribe(path).text
    signal = np.concatenate([sf.read(f, dtype="float32")[0]
                             for f in sorted(fsdd_recordings.glob("*_george_*.wav"))[:40]])
    long_path = tmp_path / "long.wav"
    sf.write(long_path, signal, RATE)
    assert gpu.transcribe(long_path, chunk_length=6.0).text == cpu.transcribe(long_path, chunk_length=6.0).text
