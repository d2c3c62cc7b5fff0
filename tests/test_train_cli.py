"""Training, resume, decoding and transcription through the command-line entry points, on a
few real yes/no recordings with a tiny model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from asr.cli import main as asr_main
from asr.cli import transcribe as transcribe_cli
from asr.config import ExperimentConfig, load_config
from asr.corpora import yesno
from asr.data import read_data_dir
from asr.data.batching import collate
from asr.data.dataset import ctc_min_frames, load_examples
from asr.features import LogMel
from asr.modeldir import load_model_dir
from asr.text import Tokenizer
from asr.train import Trainer, ctc_loss

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
YESNO = SHARED / "yesno" / "waves_yesno"

pytestmark = pytest.mark.skipif(not YESNO.is_dir(), reason="shared yesno corpus not present")

TINY = [
    "features.sample_rate=8000",
    "features.n_mels=16",
    "model.num_layers=1",
    "model.hidden_size=8",
    "model.frame_stack=3",
    "train.epochs=2",
    "train.max_frames_per_batch=3000",
    "train.max_utts_per_batch=4",
    "train.early_stop_patience=0",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Kaldi-split data dirs from the first 9 yes/no recordings (all land in test)."""
    root = tmp_path_factory.mktemp("yesno")
    corpus = root / "corpus"
    corpus.mkdir()
    for wav in sorted(YESNO.glob("*.wav"))[:9]:
        shutil.copy(wav, corpus / wav.name)
    yesno.prepare(corpus, root / "data")
    return root / "data"


def _split(data: Path) -> tuple[Path, Path]:
    # With 9 recordings, Kaldi's rule puts all of them in test; split by hand for the tests.
    all_utts = read_data_dir(data / "test").utterances + read_data_dir(data / "train").utterances
    from asr.data.datadir import write_data_dir

    train = write_data_dir(data / "tiny_train", all_utts[:6]).path
    test = write_data_dir(data / "tiny_test", all_utts[6:]).path
    return train, test


def _train(data: Path, exp: Path, extra: list[str] | None = None) -> int:
    train, test = _split(data)
    args = ["train", "--train", str(train), "--dev", str(test), "--exp-dir", str(exp), "--no-progress"]
    for override in TINY + (extra or []):
        args += ["--set", override]
    return asr_main.main(args)


def test_train_writes_experiment_and_model_dir(data, tmp_path):
    exp = tmp_path / "exp"
    assert _train(data, exp) == 0
    for name in ("config.yaml", "tokens.txt", "train.log", "checkpoints/epoch-1.pt",
                 "checkpoints/epoch-2.pt", "checkpoints/best.pt", "final/model.pt",
                 "final/config.yaml", "final/tokens.txt"):
        assert (exp / name).is_file(), name
    assert list((exp / "tb").iterdir()), "no TensorBoard events written"
    log = (exp / "train.log").read_text()
    assert "epoch 2:" in log and "exported model" in log
    loaded = load_model_dir(exp / "final")
    assert loaded.config.model.hidden_size == 8
    assert loaded.tokenizer.tokens[0] == "<blank>"
    # Global CMVN statistics travel with the weights.
    assert not torch.allclose(loaded.model.normalizer.mean, torch.zeros_like(loaded.model.normalizer.mean))


def test_resume_is_exact(data, tmp_path):
    """Two epochs in one run equal one epoch, a stop, and a resumed second epoch."""
    straight = tmp_path / "straight"
    resumed = tmp_path / "resumed"
    assert _train(data, straight) == 0
    assert _train(data, resumed, ["train.epochs=1"]) == 0
    assert _train(data, resumed, ["train.epochs=2"]) == 0
    a = torch.load(straight / "checkpoints" / "epoch-2.pt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "epoch-2.pt", weights_only=True)
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0)
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert "resumed from" in (resumed / "train.log").read_text()


def test_decode_and_score(data, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert _train(data, exp) == 0
    _, test = _split(data)
    out = tmp_path / "decode"
    assert asr_main.main(["decode", "--model", str(exp / "final"), "--data", str(test), "--out", str(out)]) == 0
    hyp_ids = [line.split()[0] for line in (out / "text").read_text().splitlines()]
    assert hyp_ids == [u.utt_id for u in read_data_dir(test).utterances]
    wer = (out / "wer").read_text().splitlines()[0]
    assert wer.startswith("%WER ") and "/ 24," in wer  # 3 utterances x 8 words
    assert "%WER" in capsys.readouterr().out
    # asr score on the same files agrees with decode's report.
    assert asr_main.main(["score", "--ref", str(test / "text"), "--hyp", str(out / "text")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == wer


def test_transcribe_reports_bad_files_and_continues(data, tmp_path, capsys, monkeypatch):
    exp = tmp_path / "exp"
    assert _train(data, exp) == 0
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))
    good = sorted(YESNO.glob("*.wav"))[0]
    bad = tmp_path / "notes.wav"
    bad.write_text("<html>not audio</html>")
    code = transcribe_cli.main(["--model", str(exp / "final"), str(good), str(bad), str(tmp_path / "missing.wav")])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.startswith(f"{good.name}: ")
    err = captured.err.strip().splitlines()
    # The audio reader names the file and what it found instead of audio.
    assert any("notes.wav: " in line and "audio" in line for line in err)
    assert any("missing.wav: no such file" in line for line in err)
    assert "Traceback" not in captured.err
    assert err[-1].startswith("transcribe: 1 of 3 file(s) transcribed")


def test_transcribe_without_any_model_says_how_to_get_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "empty-store"))
    monkeypatch.delenv("ASR_MODEL", raising=False)
    assert transcribe_cli.main([str(tmp_path / "a.wav")]) == 1
    err = capsys.readouterr().err
    assert "no default model installed" in err and "make demo" in err
    assert len(err.strip().splitlines()) == 1


def test_transcribe_json_and_models_install(data, tmp_path, capsys, monkeypatch):
    exp = tmp_path / "exp"
    assert _train(data, exp) == 0
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("ASR_MODEL", raising=False)
    assert asr_main.main(["models", "install", str(exp / "final"), "--name", "tiny", "--default"]) == 0
    assert asr_main.main(["models", "list"]) == 0
    assert "* tiny" in capsys.readouterr().out
    good = sorted(YESNO.glob("*.wav"))[0]
    out_dir = tmp_path / "out"
    assert transcribe_cli.main([str(good), "-f", "json", "-o", str(out_dir)]) == 0
    import json

    result = json.loads((out_dir / f"{good.stem}.json").read_text())
    assert result["duration"] == pytest.approx(6.0, abs=0.5)
    for word in result["words"]:
        assert 0 <= word["start"] < word["end"] <= result["duration"] + 0.1
        assert 0 < word["confidence"] <= 1


def test_missing_data_dir_is_one_line_error(tmp_path, capsys):
    code = asr_main.main(["train", "--train", str(tmp_path / "nope"), "--exp-dir", str(tmp_path / "exp")])
    err = capsys.readouterr().err
    assert code == 1
    assert "nope: data directory not found" in err
    assert "Traceback" not in err


def test_bad_utterances_are_skipped_and_counted(tmp_path, caplog):
    """Empty transcripts, unreadable audio and too-short audio are skipped with counts."""
    from asr.data.datadir import write_data_dir
    from asr.data.utterance import Utterance

    wavs = sorted(YESNO.glob("*.wav"))
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00")
    utts = [
        Utterance("s-ok", str(wavs[0]), "NO NO NO NO YES YES YES YES", "s"),
        Utterance("s-empty", str(wavs[1]), "", "s"),
        Utterance("s-garbage", str(garbage), "YES", "s"),
        Utterance("s-long-label", str(wavs[2]), " ".join(["YES"] * 400), "s"),
    ]
    data = read_data_dir(write_data_dir(tmp_path / "d", utts).path)
    config = ExperimentConfig()
    config.features.sample_rate = 8000
    tokenizer = Tokenizer.build(u.text for u in utts)
    examples, report = load_examples(data, LogMel(config.features), tokenizer, subsampling=3)
    assert [e.utt_id for e in examples] == ["s-ok"]
    assert report.counts == {"empty transcript": 1, "unreadable audio": 1, "too short for its transcript": 1}
    assert report.examples["too short for its transcript"] == ["s-long-label"]


def test_ctc_min_frames_counts_repeats():
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([1, 1, 2, 2, 2]) == 8  # a blank between each repeated pair


def test_impossible_alignment_is_zeroed_and_counted():
    config = load_config(overrides=["features.sample_rate=8000", "features.n_mels=8", "model.num_layers=1", "model.hidden_size=4"])
    from asr.data.dataset import Example

    tokenizer = Tokenizer.build(["ab"])
    examples = [
        Example("a", torch.randn(20, 8), torch.tensor([3, 4]), "ab", "s", 0.2),
        Example("b", torch.randn(2, 8), torch.tensor([3, 4, 3, 4, 3]), "ababa", "s", 0.02),
    ]
    trainer = Trainer(config, Path("unused"), tokenizer, examples, [], progress=False)
    loss, infinite = ctc_loss(trainer.model, collate(examples))
    assert infinite == 1
    assert torch.isfinite(loss) and loss > 0


def test_features_on_the_fly_then_phase_two_with_weight_noise(data, tmp_path):
    """Phase 1 computes features per batch; phase 2 restarts from its best weights with
    Graves' weight noise (``--init-from`` an experiment directory)."""
    phase1 = tmp_path / "phase1"
    assert _train(data, phase1, ["train.features_on_the_fly=true", "train.epochs=1"]) == 0
    phase2b = tmp_path / "phase2"
    train, test = _split(data)
    args = ["train", "--train", str(train), "--dev", str(test), "--exp-dir", str(phase2b), "--no-progress",
            "--init-from", str(phase1)]
    for override in TINY + ["train.weight_noise=0.075", "train.epochs=1"]:
        args += ["--set", override]
    assert asr_main.main(args) == 0
    log = (phase2b / "train.log").read_text()
    assert f"initial weights from {phase1 / 'checkpoints' / 'best.pt'}" in log
    assert "global CMVN" not in log
    assert load_config([phase2b / "config.yaml"]).train.init_from == str(phase1)


def test_train_without_data_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        asr_main.main(["train", "--exp-dir", str(tmp_path)])
    assert info.value.code == 2
    assert "--train and --exp-dir are required" in capsys.readouterr().err


def _lexicon_and_lm(tmp_path: Path, train: Path) -> tuple[Path, Path]:
    words = tmp_path / "words.txt"
    words.write_text("YES\nNO\n")
    lexicon, lm = tmp_path / "lexicon.txt", tmp_path / "lm.arpa"
    assert asr_main.main(["lm", "lexicon", str(words), "-o", str(lexicon)]) == 0
    assert asr_main.main(["lm", "build", "--order", "2", "--kaldi", str(train / "text"), "-o", str(lm)]) == 0
    return lexicon, lm


def test_installed_model_carries_its_decoder(data, tmp_path, capsys, monkeypatch):
    """set-decoder stores lexicon, LM and weights in the model; transcribe and asr decode then
    use them by default, give the same words as the explicit options, and flags override."""
    exp = tmp_path / "exp"
    assert _train(data, exp) == 0
    train, test = _split(data)
    lexicon, lm = _lexicon_and_lm(tmp_path, train)
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))
    assert asr_main.main(["models", "install", str(exp / "final"), "--name", "tiny"]) == 0
    search = ["--decoder", "lexicon", "--lexicon", str(lexicon), "--lm", str(lm),
              "--lm-weight", "0.7", "--word-score", "2.5", "--beam-size", "8"]
    assert asr_main.main(["models", "set-decoder", "tiny", *search, "--tuned-on", "dev", "--tuned-wer", "12.5"]) == 0
    stored = tmp_path / "store" / "tiny"
    assert sorted(p.name for p in stored.iterdir() if p.name in ("lexicon.txt", "lm.arpa", "decoding.yaml")) == [
        "decoding.yaml", "lexicon.txt", "lm.arpa"]
    capsys.readouterr()
    assert asr_main.main(["models", "list"]) == 0
    assert "lexicon + lm.arpa, beam 8, LM weight 0.7, word score 2.5, tuned on dev (12.50 % WER)" in capsys.readouterr().out

    wavs = [u.wav for u in read_data_dir(test).utterances]
    assert transcribe_cli.main(["--model", "tiny", "-q", *wavs]) == 0
    by_default = capsys.readouterr().out
    assert transcribe_cli.main(["--model", str(exp / "final"), "-q", *search, *wavs]) == 0
    assert capsys.readouterr().out == by_default
    # Only lexicon words come out of the model's decoder.
    assert {w for line in by_default.splitlines() for w in line.split(": ", 1)[1].split()} <= {"yes", "no", "YES", "NO"}
    assert transcribe_cli.main(["--model", "tiny", "-q", "--decoder", "greedy", *wavs]) == 0
    greedy = capsys.readouterr().out
    assert transcribe_cli.main(["--model", str(exp / "final"), "-q", *wavs]) == 0
    assert capsys.readouterr().out == greedy

    # asr decode: the model's search by default, recorded in score.json; --from reads it back.
    out = tmp_path / "decode"
    assert asr_main.main(["decode", "--model", "tiny", "--data", str(test), "--out", str(out)]) == 0
    import json

    summary = json.loads((out / "score.json").read_text())
    assert (summary["decoder"], summary["lm_weight"], summary["word_score"], summary["beam_size"]) == (
        "lexicon", 0.7, 2.5, 8)
    assert Path(summary["lexicon"]) == (stored / "lexicon.txt").resolve()
    assert asr_main.main(["models", "set-decoder", str(exp / "final"), "--from", str(out / "score.json"),
                          "--word-score", "1"]) == 0
    from asr.decode.defaults import read_decoding

    assert read_decoding(exp / "final").describe() == "lexicon + lm.arpa, beam 8, LM weight 0.7, word score 1"


def test_a_model_decoder_that_does_not_fit_is_one_line_error(data, tmp_path, capsys, monkeypatch):
    exp = tmp_path / "exp"
    assert _train(data, exp) == 0
    train, test = _split(data)
    lexicon, lm = _lexicon_and_lm(tmp_path, train)
    # A spelling with a letter the model cannot emit is refused when the decoder is stored.
    bad = tmp_path / "bad_lexicon.txt"
    bad.write_text(lexicon.read_text() + "QUIZ q u i z |\n")
    capsys.readouterr()
    assert asr_main.main(["models", "set-decoder", str(exp / "final"), "--decoder", "lexicon",
                          "--lexicon", str(bad), "--lm", str(lm)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "QUIZ" in err[0] or "bad_lexicon.txt" in err[0], err
    assert not {"decoding.yaml", "lexicon.txt", "lm.arpa"} & {p.name for p in (exp / "final").iterdir()}
    # A stored decoder whose LM went missing fails at load, naming the file and the fix.
    assert asr_main.main(["models", "set-decoder", str(exp / "final"), "--decoder", "lexicon",
                          "--lexicon", str(lexicon), "--lm", str(lm)]) == 0
    (exp / "final" / "lm.arpa").unlink()
    wav = read_data_dir(test).utterances[0].wav
    capsys.readouterr()
    assert transcribe_cli.main(["--model", str(exp / "final"), wav]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lm.arpa" in err[0] and "decoding.yaml" in err[0]
    # Choosing another search does not need the stored files.
    assert transcribe_cli.main(["--model", str(exp / "final"), "-q", "--decoder", "greedy", wav]) == 0
