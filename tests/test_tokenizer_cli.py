"""Phone (through a lexicon) and BPE units through `asr train` and `asr decode` on a few real
yes/no recordings with a tiny model: the tokenizer is built, checked, stored in the model
directory and restored for decoding; a word missing from the lexicon stops training in one
line that names the utterance."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from asr.cli import main as asr_main
from asr.corpora import yesno
from asr.modeldir import load_model_dir
from asr.text import BLANK, SPACE, UNK

TINY = [
    "features.sample_rate=8000", "features.n_mels=16", "model.num_layers=1",
    "model.hidden_size=8", "model.frame_stack=3", "train.epochs=1",
    "train.max_frames_per_batch=3000", "train.max_utts_per_batch=4",
    "train.early_stop_patience=0", "train.device=cpu", "train.num_threads=1",
]


@pytest.fixture(scope="module")
def data(yesno_waves: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("yesno_units")
    corpus = root / "corpus"
    corpus.mkdir()
    for wav in sorted(yesno_waves.glob("*.wav"))[:6]:
        shutil.copy(wav, corpus / wav.name)
    yesno.prepare(corpus, root / "data")
    return root / "data" / "test"  # Kaldi's rule puts the first 29 recordings in test


def train(data: Path, exp: Path, *settings: str) -> int:
    args = ["train", "--train", str(data), "--exp-dir", str(exp), "--no-progress"]
    for setting in (*TINY, *settings):
        args += ["--set", setting]
    return asr_main.main(args)


def test_phone_units_through_a_lexicon(data: Path, tmp_path: Path, capsys) -> None:
    lexicon = tmp_path / "yesno.dic"
    lexicon.write_text("YES  Y EH1 S\nNO  N OW1\nNO(2)  N AH0\n")
    exp = tmp_path / "phone"
    assert train(data, exp, "tokenizer.type=phone", f"tokenizer.lexicon={lexicon}",
                 "tokenizer.word_boundary=true") == 0
    loaded = load_model_dir(exp / "final")
    assert loaded.tokenizer.unit == "phone"
    assert loaded.tokenizer.tokens == [BLANK, UNK, SPACE, "EH", "N", "OW", "S", "Y"]
    out = tmp_path / "decode"
    assert asr_main.main(["decode", "--model", str(exp / "final"), "--data", str(data),
                          "--out", str(out)]) == 0
    phones = {p for line in (out / "text").read_text().splitlines() for p in line.split()[1:]}
    assert phones <= {"EH", "N", "OW", "S", "Y", UNK}  # phones, never the boundary token
    capsys.readouterr()

    lexicon.write_text("YES  Y EH1 S\n")
    assert train(data, tmp_path / "missing", "tokenizer.type=phone",
                 f"tokenizer.lexicon={lexicon}") == 1
    # Besides the logged command line, the error is one line.
    err = [line for line in capsys.readouterr().err.splitlines() if " INFO " not in line]
    assert len(err) == 1, err
    err = err[0]
    assert "text: utterance global-0_0_" in err and "word 'NO' is not in the lexicon" in err
    assert "yesno.dic" in err


def test_bpe_units_round_trip_through_the_model_directory(data: Path, tmp_path: Path) -> None:
    exp = tmp_path / "bpe"
    assert train(data, exp, "tokenizer.type=bpe", "tokenizer.bpe_vocab_size=10") == 0
    for directory in (exp, exp / "final"):
        assert (directory / "bpe.model").is_file()
    loaded = load_model_dir(exp / "final")
    assert loaded.tokenizer.unit == "bpe" and len(loaded.tokenizer) == 11
    assert loaded.tokenizer.decode(loaded.tokenizer.encode("YES NO NO")) == "YES NO NO"
    out = tmp_path / "decode"
    assert asr_main.main(["decode", "--model", str(exp / "final"), "--data", str(data),
                          "--out", str(out)]) == 0
    assert (out / "text").is_file()
