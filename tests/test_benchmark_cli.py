"""`asr benchmark`: the model x data table on tiny untrained models, discovery of benchmark
kinds, and the shared decoding loop that `asr decode` also uses."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import asr.benchmarks
from asr.benchmarks.models import COLUMNS
from asr.cli import main as asr_main
from asr.config import load_config
from asr.data.datadir import write_data_dir
from asr.data.tables import read_kaldi_map
from asr.data.utterance import Utterance
from asr.decode.decode_dir import available_decoders, decode_data_dir
from asr.errors import AsrError
from asr.inference import load_model
from asr.model import build_model
from asr.modeldir import save_model_dir
from asr.scoring import score
from asr.text import Tokenizer

TINY = ["features.sample_rate=8000", "features.n_mels=10", "model.num_layers=1",
        "model.hidden_size=8", "model.frame_stack=3", "features.cmvn=utterance"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Path:
    """Two tiny untrained models and a data dir of 6 tones (3 per speaker) with transcripts."""
    root = tmp_path_factory.mktemp("bench")
    config = load_config(overrides=TINY)
    tokenizer = Tokenizer.build(["yes no"])
    for seed, name in ((0, "m1"), (1, "m2")):
        torch.manual_seed(seed)
        save_model_dir(root / name, build_model(config.model, config.features, len(tokenizer)),
                       config, tokenizer)
    utts = []
    for i in range(6):
        t = np.arange(4000 * (1 + i % 3)) / 8000
        wav = root / "wav" / f"spk{i % 2}-u{i}.wav"
        wav.parent.mkdir(exist_ok=True)
        sf.write(wav, (0.3 * np.sin(2 * np.pi * (300 + 60 * i) * t)).astype(np.float32), 8000)
        utts.append(Utterance(f"spk{i % 2}-u{i}", str(wav), "yes no yes" if i % 2 else "no", f"spk{i % 2}"))
    write_data_dir(root / "data", utts)
    return root


def test_model_by_data_table(setup: Path, capsys) -> None:
    out = setup / "out"
    code = asr_main.main(["benchmark", "--model", str(setup / "m1"), str(setup / "m2"),
                          "--data", str(setup / "data"), "--out", str(out), "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert list(rows[0]) == COLUMNS
    assert [(Path(r["model"]).name, r["decoder"]) for r in rows] == [("m1", "greedy"), ("m2", "greedy")]
    for r in rows:
        assert r["device"].startswith("cpu (") and float(r["RTF"]) > 0 and float(r["utterances/s"]) > 0
        # The WER in the table is what scoring the written hypotheses gives.
        [pair] = (out / "decode").glob(f"*{Path(r['model']).name}__*__greedy")
        hyps = read_kaldi_map(pair / "text", allow_empty_value=True)
        refs = read_kaldi_map(setup / "data" / "text", allow_empty_value=True)
        assert float(r["WER"]) == pytest.approx(score(refs, hyps).wer.rate, abs=1e-4)
        assert (pair / "wer").read_text().startswith("%WER ")
    md = (out / "table.md").read_text().splitlines()
    assert md[0] == "| " + " | ".join(COLUMNS) + " |" and len(md) == 4
    assert "\n".join(md) in printed
    assert (out / "wer_vs_rtf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(json.loads((out / "table.json").read_text())) == 2


def test_decode_uses_the_shared_loop_and_keeps_its_outputs(setup: Path, capsys) -> None:
    out = setup / "decode"
    assert asr_main.main(["decode", "--model", str(setup / "m1"), "--data", str(setup / "data"),
                          "--out", str(out), "--device", "cpu"]) == 0
    for name in ("text", "words.json", "wer", "per_spk", "score.json", "decode.log"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "score.json").read_text())
    assert set(summary) == {"wer", "ser", "cer", "per_speaker", "missing", "rtf", "device", "unreadable"}
    lines = (out / "wer").read_text().splitlines()
    assert lines[0].startswith("%WER ") and lines[1].startswith("%SER ") and lines[2].startswith("%CER ")
    assert capsys.readouterr().out.splitlines()[0] == lines[0]
    run = decode_data_dir(load_model(setup / "m1", device="cpu"), setup / "data", batch_size=2)
    assert run.hyps == read_kaldi_map(out / "text", allow_empty_value=True)
    assert run.audio_seconds == pytest.approx(sum(0.5 * (1 + i % 3) for i in range(6)))
    assert run.rtf == pytest.approx(run.elapsed / run.audio_seconds)
    assert run.utts_per_second == pytest.approx(6 / run.elapsed)


def test_unreadable_utterances(setup: Path, tmp_path: Path) -> None:
    utts = [Utterance("spk0-bad", str(tmp_path / "missing.wav"), "no", "spk0"),
            Utterance("spk0-good", str(setup / "wav" / "spk0-u0.wav"), "no", "spk0")]
    data = write_data_dir(tmp_path / "data", utts)
    recognizer = load_model(setup / "m1", device="cpu")
    with pytest.raises(AsrError, match="1 unreadable utterance.*'spk0-bad'.*--max-bad-utts 0"):
        decode_data_dir(recognizer, data.path)
    run = decode_data_dir(recognizer, data.path, max_bad_utts=1)
    assert run.unreadable == ["spk0-bad"] and list(run.hyps) == ["spk0-good"]


def test_decoder_choices(setup: Path) -> None:
    assert "greedy" in available_decoders()
    with pytest.raises(SystemExit) as exc:
        asr_main.main(["benchmark", "--model", "m", "--data", "d", "--decoder", "no-such-decoder"])
    assert exc.value.code == 2


def test_bare_form_needs_model_and_data(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        asr_main.main(["benchmark", "--model", "m"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--data" in err and "models" in err and "scoring" in err


def test_kinds_are_discovered_and_loaded_only_when_run(tmp_path: Path, monkeypatch, capsys) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "echo.py").write_text(textwrap.dedent('''
        """Echo: prints its argument."""
        def add_arguments(parser):
            parser.add_argument("--word", required=True)
        def run(args):
            print("echo", args.word)
            return 0
    '''))
    (plugins / "broken.py").write_text('"""Broken: needs a package that is not installed."""\nimport no_such_package_xyz\n')
    monkeypatch.setattr(asr.benchmarks, "__path__", [*asr.benchmarks.__path__, str(plugins)])
    with pytest.raises(SystemExit) as exc:
        asr_main.main(["benchmark", "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    assert "echo" in help_text and "Echo: prints its argument." in help_text and "broken" in help_text
    assert asr_main.main(["benchmark", "echo", "--word", "hi"]) == 0
    assert capsys.readouterr().out == "echo hi\n"
    with pytest.raises(SystemExit) as exc:
        asr_main.main(["benchmark", "broken"])
    assert exc.value.code == 2
    assert "cannot load the broken benchmark" in capsys.readouterr().err


def test_scoring_benchmark(tmp_path: Path, capsys) -> None:
    js = tmp_path / "scoring.json"
    assert asr_main.main(["benchmark", "scoring", "--pairs", "300", "--repeat", "1", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "| asr score(): WER + CER + alignments | 300 |" in out
    rows = json.loads(js.read_text())["rows"]
    ours = rows[0]
    assert ours["pairs"] == 300 and ours["seconds"] > 0 and 5 < ours["wer"] < 30
    sclite_rows = [r for r in rows if r["scorer"].startswith("sclite")]
    if sclite_rows:  # sclite installed: our counts are its counts
        assert (ours["subs"], ours["dels"], ours["ins"]) == tuple(sclite_rows[0][k] for k in ("subs", "dels", "ins"))


@pytest.mark.skipif("beam" not in available_decoders(), reason="no beam decoder in this build")
def test_one_row_per_decoder(setup: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert asr_main.main(["benchmark", "models", "--model", str(setup / "m1"), "--data", str(setup / "data"),
                          "--decoder", "greedy", "beam", "--out", str(out), "--device", "cpu"]) == 0
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["decoder"] for r in rows] == ["greedy", "beam"]
    assert all(r["WER"] != "" for r in rows)
    assert sorted(p.name.rsplit("__", 1)[1] for p in (out / "decode").iterdir()) == ["beam", "greedy"]


def test_decode_benchmark_needs_data_and_builds_its_lm_only_from_train_text(setup: Path, tmp_path: Path,
                                                                            capsys) -> None:
    with pytest.raises(SystemExit) as exc:  # no default data set: it would lie outside the package
        asr_main.main(["benchmark", "decode", "--model", str(setup / "m1")])
    assert exc.value.code == 2 and "--data" in capsys.readouterr().err
    base = ["benchmark", "decode", "--model", str(setup / "m1"), "--data", str(setup / "data"),
            "--beam-sizes", "4", "--repeat", "1", "--no-pyctcdecode", "--device", "cpu"]
    plain, with_lm = tmp_path / "plain.json", tmp_path / "lm.json"
    assert asr_main.main([*base, "--json", str(plain)]) == 0
    assert "# LM: none (give --train-text" in capsys.readouterr().out
    rows = json.loads(plain.read_text())["rows"]
    assert not any(r["lm"] for r in rows) and "lexicon (flashlight)" not in {r["decoder"] for r in rows}
    assert json.loads(plain.read_text())["model"] == str(setup / "m1")
    assert asr_main.main([*base, "--train-text", str(setup / "data" / "text"), "--json", str(with_lm)]) == 0
    assert f"# LM: 3-gram from {setup / 'data' / 'text'}" in capsys.readouterr().out
    rows = json.loads(with_lm.read_text())["rows"]
    assert any(r["lm"] and r["decoder"] == "beam (ours)" for r in rows)
    assert "lexicon (flashlight)" in {r["decoder"] for r in rows}


def test_transcribe_benchmark_presets_come_from_the_package(tmp_path: Path, monkeypatch) -> None:
    from asr.benchmarks.transcribe import _preset_paths
    from asr.presets import preset_dir

    monkeypatch.chdir(tmp_path)  # no conf/ here: names resolve inside the package
    model = preset_dir() / "model"
    assert _preset_paths("model/ctc_5l_250h,largest") == [model / "ctc_5l_250h.yaml",
                                                          model / "blstmp_conv2d.yaml"]
    own = tmp_path / "mine.yaml"
    own.write_text("model:\n  hidden_size: 4\n")
    assert _preset_paths(f"{own},model/ctc_5l_250h.yaml,ctc_5l_250h") == [own, model / "ctc_5l_250h.yaml"]
    with pytest.raises(AsrError, match="nearest: model/ctc_5l_250h"):
        _preset_paths("model/ctc_5l_25h")
