"""asr.corpora.timit and recipes/timit: the Graves et al. (2013) TIMIT setup on a fabricated
corpus in TIMIT's exact layout (TIMIT itself is licensed and not available here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.corpora import timit
from asr.data import read_data_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return timit.fabricate(tmp_path_factory.mktemp("timit") / "corpus", train_speakers=6,
                           utts_per_speaker=1)


def test_phone_sets_and_lee_hon_folding() -> None:
    assert len(timit.PHONES_61) == 61 and len(timit.PHONES_39) == 39
    assert timit.fold39("h# sh iy hv ae dcl d q ax-h pau zh ux".split()) == (
        "sil sh iy hh ae sil d ah sil sh uw".split())
    # Hypotheses already in the 39 classes pass through; anything else is an error.
    assert timit.fold39(["sil", "aa"]) == ["sil", "aa"]
    with pytest.raises(timit.TimitError, match=r"hyp.txt:3: 'xx' is not a TIMIT phone"):
        timit.fold39(["aa", "xx"], "hyp.txt:3")


def test_speaker_lists() -> None:
    assert len(set(timit.DEV_SPEAKERS)) == 50 and len(set(timit.CORE_TEST_SPEAKERS)) == 24
    assert not set(timit.DEV_SPEAKERS) & set(timit.CORE_TEST_SPEAKERS)
    # Core test: two men and one woman from each of the 8 dialect regions.
    assert sum(s.startswith("m") for s in timit.CORE_TEST_SPEAKERS) == 16
    # The recipe's lists are the module's.
    recipe = ROOT / "recipes" / "timit" / "conf"
    assert (recipe / "dev_spk.list").read_text().split() == timit.DEV_SPEAKERS
    assert (recipe / "test_spk.list").read_text().split() == timit.CORE_TEST_SPEAKERS


def test_sphere_file_is_timit_format(tmp_path: Path) -> None:
    samples = (np.arange(-500, 500) * 7).astype(np.int16)
    path = tmp_path / "SX3.WAV"
    timit.write_sphere(path, samples, "cjf0_sx3")
    raw = path.read_bytes()
    assert raw.startswith(b"NIST_1A\n   1024\n") and len(raw) == 1024 + 2 * len(samples)
    assert b"sample_byte_format -s2 01\n" in raw[:1024] and b"end_head" in raw[:1024]
    data, rate = sf.read(path, dtype="int16")
    assert rate == 16000 and np.array_equal(data, samples)


def test_prepare_the_standard_split(corpus: Path, tmp_path: Path) -> None:
    assert (corpus / "TRAIN" / "DR1" / "FFAK0" / "SA1.WAV").is_file()
    dirs = timit.prepare(corpus, tmp_path / "data")
    train, dev, test = (read_data_dir(dirs[name]) for name in ("train", "dev", "test"))
    assert len(train) == 6 and len(dev) == 50 and len(test) == 24  # SA1/SA2 dropped
    assert not any("_sa" in u.utt_id for d in (train, dev, test) for u in d.utterances)
    assert sorted(dev.speakers) == sorted(timit.DEV_SPEAKERS)
    assert sorted(test.speakers) == sorted(timit.CORE_TEST_SPEAKERS)
    utt = train.utterances[0]
    stem = corpus / "TRAIN" / "DR1" / "FFAK0" / utt.utt_id.split("_")[1].upper()
    phn = [line.split()[2] for line in stem.with_suffix(".PHN").read_text().splitlines()]
    assert utt.utt_id.startswith("ffak0_s") and utt.text.split() == phn
    words = (dirs["train"] / "text.words").read_text().splitlines()[0].split()
    assert words[0] == utt.utt_id and words[1:] == [
        line.split()[2].upper() for line in stem.with_suffix(".WRD").read_text().splitlines()]


def test_prepare_errors(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(timit.TimitError, match=r"no TRAIN/ directory"):
        timit.prepare(tmp_path, tmp_path / "data")
    partial = tmp_path / "partial"
    shutil.copytree(corpus, partial)
    shutil.rmtree(next((partial / "TEST").glob("DR*/FAKS0")))
    with pytest.raises(timit.TimitError, match=r"1 speakers of the dev set are missing \(first: faks0\)"):
        timit.prepare(partial, tmp_path / "data")
    phn = next((partial / "TRAIN").glob("DR1/*/SI*.PHN"))
    phn.write_text("0 100 h#\n100 200 zz\n")
    shutil.copytree(corpus / "TEST", partial / "TEST", dirs_exist_ok=True)
    with pytest.raises(timit.TimitError, match=r"\.PHN:2: 'zz' is not one of TIMIT's 61 phones"):
        timit.prepare(partial, tmp_path / "data")


def test_fold39_command(tmp_path: Path) -> None:
    (tmp_path / "text").write_text("a_1 h# ax q n h#\nb_2 zh\n")
    assert timit.main(["fold39", str(tmp_path / "text"), str(tmp_path / "t39")]) == 0
    assert (tmp_path / "t39").read_text() == "a_1 sil ah n sil\nb_2 sh\n"


# About 40-60 s of CPU on 2 cores (dozens of python processes), longer on a loaded machine.
@pytest.mark.slow
def test_recipe_end_to_end(corpus: Path, tmp_path: Path) -> None:
    """run.sh from data prep to the PER table: a tiny model, both training phases, beam
    decoding of the core test set, 39-class scoring."""
    root = tmp_path / "root"
    (root / "recipes").mkdir(parents=True)
    shutil.copytree(ROOT / "recipes" / "timit", root / "recipes" / "timit",
                    ignore=shutil.ignore_patterns("data", "exp"))
    for name in (".venv", "tools", "conf"):
        (root / name).symlink_to(ROOT / name)
    tiny = ("--set model.num_layers=1 --set model.hidden_size=8 --set train.epochs=1 "
            "--set train.max_utts_per_batch=8 --set train.device=cpu --set train.num_threads=1")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    result = subprocess.run(
        ["./run.sh", "--corpus-dir", str(corpus), "--beam", "4", "--nj", "1", "--phases", "phase2",
         "--train-opts", tiny], cwd=root / "recipes" / "timit", env=env, capture_output=True,
        text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    recipe = root / "recipes" / "timit"
    exp = recipe / "exp" / "ctc_3l_250h"
    config = (exp / "phase2" / "final" / "config.yaml").read_text()
    for setting in ("type: graves123", "weight_noise: 0.075", "type: phone", "cell: peephole",
                    "max_utts_per_batch: 8", "optimizer: sgd", "lr: 0.0001"):
        assert setting in config
    tokens = (exp / "phase2" / "final" / "tokens.txt").read_text().split()[::2]
    assert len(tokens) == 63 and tokens[2:] == timit.PHONES_61  # conf/phones61.txt, not the text
    decode = exp / "decode_phase2_beam4_test"
    hyp39 = (decode / "hyp39.txt").read_text().split()
    assert set(hyp39) - {u for u in hyp39 if "_" in u} <= set(timit.PHONES_39)
    per = (decode / "per").read_text()
    assert per.startswith("%PER ") and "/ 301," in per  # 24 folded core-test references
    table = (recipe / "exp" / "results.md").read_text()
    assert "| ctc_3l_250h | phase2 |" in table
    for marker in ("data/.done", "exp/ctc_3l_250h/phase1/.done", "exp/ctc_3l_250h/phase2/.done"):
        assert (recipe / marker).is_file()
    print(f"timit recipe: {time.monotonic() - start:.1f} s")


def test_pipeline_in_process(corpus: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """The recipe's steps without its shell and process start-ups: data prep, phase-2 training
    (weight noise) of a tiny peephole model over the 61 phones, beam search, 39-class PER."""
    from asr.cli import main as asr_main

    recipe = ROOT / "recipes" / "timit"
    monkeypatch.chdir(recipe)  # conf/timit.yaml names conf/phones61.txt relative to the recipe
    dirs = timit.prepare(corpus, tmp_path / "data")
    exp = tmp_path / "exp"
    args = ["train", "--train", str(dirs["train"]), "--dev", str(dirs["dev"]), "--exp-dir", str(exp),
            "--no-progress", "--config", str(ROOT / "conf/features/graves123_16k.yaml"),
            "--config", str(ROOT / "conf/model/ctc_3l_250h.yaml"),
            "--config", str(ROOT / "conf/train/graves_phase2_noise.yaml"), "--config", "conf/timit.yaml"]
    for setting in ("model.cell=peephole", "model.num_layers=1", "model.hidden_size=8",
                    "train.epochs=1", "train.max_utts_per_batch=8", "train.device=cpu",
                    "train.num_threads=1"):
        args += ["--set", setting]
    assert asr_main.main(args) == 0
    assert (exp / "final" / "tokens.txt").read_text().split()[::2][2:] == timit.PHONES_61
    out = tmp_path / "decode"
    assert asr_main.main(["decode", "--model", str(exp / "final"), "--data", str(dirs["test"]),
                          "--out", str(out), "--decoder", "beam", "--beam-size", "4"]) == 0
    assert timit.main(["fold39", str(dirs["test"] / "text"), str(out / "ref39"),
                       str(out / "text"), str(out / "hyp39")]) == 0
    ref39 = (out / "ref39").read_text().split()
    assert "q" not in ref39 and "h#" not in ref39 and "sil" in ref39
    capsys.readouterr()
    assert asr_main.main(["score", "--ref", str(out / "ref39"), "--hyp", str(out / "hyp39")]) == 0
    assert "/ 301," in capsys.readouterr().out.splitlines()[0]  # 301 folded reference phones
