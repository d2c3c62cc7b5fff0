"""ROVER models (asr.rover_model): made, installed, listed and run by `transcribe` as one
model; refused by `asr decode` and export with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from asr.cli.main import main as asr_main
from asr.cli.transcribe import main as transcribe_main
from asr.errors import AsrError, ModelError
from asr.export import ExportError, export_model
from asr.inference import Recognizer, load_model
from asr.rover import combine_words
from asr.rover_model import ROVER_FILE, RoverRecognizer, combine_results, make_rover, rover_systems
from asr.transcript import Result, Word
from tests.transcribe_utils import make_model_dir, one_thread  # noqa: F401 - fixture


@pytest.fixture
def systems(tmp_path: Path) -> list[Path]:
    return [make_model_dir(tmp_path / f"m{seed}", seed=seed) for seed in (0, 1, 2)]


@pytest.fixture
def wavs(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(5)
    paths = []
    for i, n in enumerate((6000, 9000, 12000)):
        t = np.arange(n) / 8000
        signal = 0.3 * np.sin(2 * np.pi * (250 + 90 * i) * t) * (rng.random(n) > 0.3)
        signal[n // 3 : n // 2] = 0.0  # a pause: two words
        paths.append(tmp_path / f"u{i}.wav")
        sf.write(paths[-1], signal.astype(np.float32), 8000)
    return paths


def test_words_come_from_the_system_that_won_them() -> None:
    def result(words: list[tuple[str, float]]) -> Result:
        return Result(" ".join(w for w, _ in words), 2.0, [Word(w, t, t + 0.2, 0.5 + t / 10) for w, t in words])

    a = result([("one", 0.1), ("two", 0.6)])
    b = result([("one", 0.12), ("three", 0.62)])
    c = result([("three", 0.64)])
    combined = combine_results([a, b, c])
    assert combined.text == "one three"
    assert [(w.word, w.start) for w in combined.words] == [("one", 0.1), ("three", 0.62)]
    # A winning word from a system without word times: no times at all, the text stays.
    untimed = combine_results([a, Result("one three", 2.0, []), c])
    assert untimed.text == "one three" and untimed.words == []


def test_transcribes_as_the_vote_of_its_systems(systems, wavs, tmp_path: Path, one_thread) -> None:  # noqa: F811
    rover = make_rover(tmp_path / "rover", systems)
    assert yaml.safe_load((rover / ROVER_FILE).read_text())["systems"] == [".", "system-2", "system-3"]
    assert rover_systems(rover) == [rover, rover / "system-2", rover / "system-3"]
    recognizer = load_model(rover, device="cpu")
    assert isinstance(recognizer, RoverRecognizer) and len(recognizer.systems) == 3
    singles: list[Recognizer] = [load_model(s, device="cpu") for s in systems]
    texts = [[r.text for _, r in single.transcribe_files(wavs)] for single in singles]
    assert len({tuple(t) for t in texts}) > 1  # the systems disagree somewhere
    combined = [r.text for _, r in recognizer.transcribe_files(wavs)]
    expected = [" ".join(combine_words([t[i].split() for t in texts])) for i in range(len(wavs))]
    assert combined == expected
    assert recognizer.transcribe(wavs[1]).text == expected[1]
    signals = [sf.read(w, dtype="float32")[0] for w in wavs]
    assert [r.text for r in recognizer.transcribe_signals(signals)] == expected
    with pytest.raises(AsrError, match="ROVER model: each of its systems decodes with its own search"):
        list(recognizer.transcribe_files(wavs, decoder="beam"))
    with pytest.raises(AsrError, match="ROVER model"):
        load_model(rover, device="cpu", model_decoder=False)


def test_installs_lists_transcribes_and_is_refused_where_it_cannot_run(
        systems, wavs, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))
    out = tmp_path / "rover"
    assert asr_main(["models", "rover", *map(str, systems), "--out", str(out)]) == 0
    assert asr_main(["models", "install", str(out), "--name", "vote"]) == 0
    installed = tmp_path / "store" / "vote"
    assert (installed / "system-3" / "model.pt").is_file()
    capsys.readouterr()
    assert asr_main(["models", "list"]) == 0
    assert "ROVER of 3 systems; system 1: greedy" in capsys.readouterr().out
    assert transcribe_main(["--model", "vote", "--device", "cpu", "-f", "json", str(wavs[0])]) == 0
    text = json.loads(capsys.readouterr().out)["text"]
    assert text == load_model(out, device="cpu").transcribe(wavs[0]).text
    assert transcribe_main(["--model", "vote", "--device", "cpu", "--decoder", "beam", str(wavs[0])]) == 1
    assert "ROVER model" in capsys.readouterr().err
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"u0 {wavs[0]}\n")
    assert asr_main(["decode", "--model", "vote", "--data", str(data), "--out", str(tmp_path / "dec")]) == 1
    assert "combine their text files with `asr combine`" in capsys.readouterr().err
    with pytest.raises(ExportError, match="ROVER model"):
        export_model(installed, "torchscript")


def test_systems_of_other_sample_rates_hear_the_audio_at_their_own(tmp_path: Path, wavs, one_thread) -> None:  # noqa: F811
    systems = [make_model_dir(tmp_path / "m8k", seed=0),
               make_model_dir(tmp_path / "m16k", "features.sample_rate=16000", seed=1),
               make_model_dir(tmp_path / "m8k2", seed=2)]
    recognizer = load_model(make_rover(tmp_path / "rover", systems), device="cpu")
    signal = sf.read(wavs[2], dtype="float32")[0]
    texts = [load_model(s, device="cpu").transcribe(wavs[2]).text.split() for s in systems]
    assert recognizer.transcribe_signals([signal])[0].text == " ".join(combine_words(texts))


def test_bad_rover_models_are_refused_with_the_file_named(systems, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="three or more systems"):
        make_rover(tmp_path / "two", systems[:2])
    rover = make_rover(tmp_path / "rover", systems)
    with pytest.raises(ModelError, match="not empty"):
        make_rover(rover, systems)
    broken = tmp_path / "broken"
    shutil.copytree(rover, broken)
    shutil.rmtree(broken / "system-3")
    with pytest.raises(ModelError, match=r"system-3: system 3 of .*rover.yaml is not a model directory"):
        load_model(broken, device="cpu")
    (broken / ROVER_FILE).write_text("combine: [\n")
    with pytest.raises(ModelError, match=r"rover.yaml: unreadable"):
        rover_systems(broken)
    (broken / ROVER_FILE).write_text("combine: rover\nsystems: [., ../elsewhere]\n")
    with pytest.raises(ModelError, match="must be a subdirectory name"):
        rover_systems(broken)
