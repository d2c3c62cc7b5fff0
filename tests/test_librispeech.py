"""asr.corpora.librispeech and recipes/librispeech on a fabricated mini corpus in
LibriSpeech's layout (FLAC + <reader>-<chapter>.trans.txt)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from asr.corpora import librispeech as ls
from asr.data import read_data_dir
from asr.download import DownloadError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ls.fabricate(tmp_path_factory.mktemp("libri") / "corpus", readers=2, utts=3)


def test_subsets_and_checksums() -> None:
    assert ls.SUBSETS["960"] == ("train-clean-100", "train-clean-360", "train-other-500")
    assert set(ls.SHA256) == set(ls.PARTS)
    assert all(f"{part}.tar.gz" in ls.MD5 for part in ls.PARTS)
    assert all(name in ls.MD5 for name in ls.LM_FILES)
    assert all(len(v) == 64 for v in ls.SHA256.values()) and all(len(v) == 32 for v in ls.MD5.values())


def test_prepare_part_and_jobs(corpus: Path, tmp_path: Path) -> None:
    whole = read_data_dir(ls.prepare_part(corpus, "dev-clean", tmp_path / "all"))
    assert len(whole) == 6 and sorted(whole.speakers) == ["110-1000", "111-1007"]
    utt = whole.utterances[0]
    assert utt.utt_id == "110-1000-0000" and utt.speaker == "110-1000"
    assert utt.wav.endswith("LibriSpeech/dev-clean/110/1000/110-1000-0000.flac")
    trans = (corpus / "LibriSpeech/dev-clean/110/1000/110-1000.trans.txt").read_text().splitlines()
    assert f"{utt.utt_id} {utt.text}" == trans[0]
    durations = (tmp_path / "all" / "utt2dur").read_text().split()
    assert len(durations) == 12 and all(float(d) > 1.0 for d in durations[1::2])
    # Two jobs take alternate readers; together they are the whole part.
    first = read_data_dir(ls.prepare_part(corpus, "dev-clean", tmp_path / "j1", job=1, num_jobs=2))
    second = read_data_dir(ls.prepare_part(corpus, "dev-clean", tmp_path / "j2", job=2, num_jobs=2))
    assert first.speakers == ["110-1000"] and second.speakers == ["111-1007"]
    with pytest.raises(ls.LibriSpeechError, match="--job 3 is not in 1..2"):
        ls.prepare_part(corpus, "dev-clean", tmp_path / "x", job=3, num_jobs=2)


def test_malformed_corpus_errors(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ls.LibriSpeechError, match=r"no test-other/ or LibriSpeech/test-other/"):
        ls.prepare_part(corpus, "test-other", tmp_path / "x")
    broken = tmp_path / "broken"
    shutil.copytree(corpus / "LibriSpeech" / "dev-clean", broken / "LibriSpeech" / "dev-clean")
    chapter = broken / "LibriSpeech/dev-clean/110/1000"
    (chapter / "110-1000-0001.flac").unlink()
    with pytest.raises(ls.LibriSpeechError, match=r"110-1000.trans.txt:2: 110-1000-0001.flac is missing"):
        ls.prepare_part(broken, "dev-clean", tmp_path / "x")
    (chapter / "110-1000.trans.txt").write_text("999-1-0000 WRONG PREFIX\n")
    with pytest.raises(ls.LibriSpeechError, match=r"trans.txt:1: expected '110-1000-NNNN TRANSCRIPT'"):
        ls.prepare_part(broken, "dev-clean", tmp_path / "x")


def test_download_verifies_and_extracts(corpus: Path, tmp_path: Path, monkeypatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / "dev-clean.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(corpus / "LibriSpeech" / "dev-clean", arcname="LibriSpeech/dev-clean")
    data = archive.read_bytes()
    # The published sums do not match this archive: the download is refused and deleted.
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        ls.download_part("dev-clean", tmp_path / "dl", base_url=mirror.as_uri())
    assert not list((tmp_path / "dl").glob("dev-clean.tar.gz*"))
    monkeypatch.setitem(ls.SHA256, "dev-clean", hashlib.sha256(data).hexdigest())
    with pytest.raises(DownloadError, match="MD5 mismatch"):
        ls.download_part("dev-clean", tmp_path / "dl", base_url=mirror.as_uri())
    monkeypatch.setitem(ls.MD5, "dev-clean.tar.gz", hashlib.md5(data).hexdigest())
    target = ls.download_part("dev-clean", tmp_path / "dl", base_url=mirror.as_uri())
    assert (target / ".complete").is_file() and len(list(target.rglob("*.flac"))) == 6
    archive.unlink()  # done once: no second download
    assert ls.download_part("dev-clean", tmp_path / "dl", base_url=mirror.as_uri()) == target
    with pytest.raises(ls.LibriSpeechError, match="unknown LibriSpeech part"):
        ls.download_part("train-clean-5", tmp_path / "dl")


# About 40-60 s of CPU on 2 cores (dozens of python processes), longer on a loaded machine.
@pytest.mark.slow
def test_recipe_end_to_end(corpus: Path, tmp_path: Path) -> None:
    """run.sh from data prep (2 jobs per part) through BPE training with speed perturbation and
    SpecAugment in 2 torchrun processes (CPU, gloo), greedy and 4-gram lexicon decoding, to the
    results table."""
    root = tmp_path / "root"
    (root / "recipes").mkdir(parents=True)
    shutil.copytree(ROOT / "recipes" / "librispeech", root / "recipes" / "librispeech",
                    ignore=shutil.ignore_patterns("data", "exp"))
    for name in (".venv", "tools", "conf"):
        (root / name).symlink_to(ROOT / name)
    tiny = ("--set tokenizer.bpe_vocab_size=40 --set model.num_layers=1 --set model.hidden_size=16 "
            "--set model.proj_size=0 --set model.conv_channels=4 --set train.epochs=1 "
            "--set train.device=cpu --set train.precision=fp32 --set train.warmup_steps=0 "
            "--set train.num_threads=1")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    result = subprocess.run(
        ["./run.sh", "--corpus-dir", str(corpus), "--eval-parts", "test-clean", "--lm-source",
         "train", "--nj", "2", "--beam", "8", "--lm-weights", "0.5,1", "--word-scores", "0",
         "--ngpu", "2", "--torchrun-opts", "--standalone", "--train-opts", tiny], cwd=root / "recipes" / "librispeech", env=env,
        capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    recipe = root / "recipes" / "librispeech"
    exp = recipe / "exp" / "bpe_blstm_100h"
    final = exp / "final"
    assert (final / "bpe.model").is_file() and len((final / "tokens.txt").read_text().splitlines()) == 41
    config = (final / "config.yaml").read_text()
    for setting in ("type: bpe", "speed_perturb: true", "spec_augment: true", "frontend: conv2d"):
        assert setting in config
    assert len(list((recipe / "data/local/prep_train-clean-100/log").glob("prep.*.log"))) == 2
    assert len(list((exp / "decode_lm_test_clean" / "log").glob("decode.*.log"))) == 2
    lexicon = (exp / "lexicon_bpe.txt").read_text().splitlines()
    assert lexicon and all(line.split()[1].startswith("\u2581") for line in lexicon)
    assert (exp / "decode_lm_tune" / "best_wer").is_file()
    assert "torchrun --nproc_per_node=2" in (exp / "log" / "train.log").read_text()
    for kind in ("greedy", "lm"):
        assert (exp / f"decode_{kind}_test_clean" / "wer").read_text().startswith("%WER ")
    assert "| bpe_blstm_100h | lm |" in (recipe / "exp" / "results.md").read_text()
    print(f"librispeech recipe: {time.monotonic() - start:.1f} s")


def test_pipeline_in_process(corpus: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """The recipe's steps without its shell: data prep, BPE training of a tiny model with the
    large preset's augmentation (speed perturbation on the fly, SpecAugment), a word LM, the
    lexicon in BPE pieces and lexicon + LM decoding."""
    from asr.cli import main as asr_main
    from asr.text import spell

    data = {part: ls.prepare_part(corpus, part, tmp_path / part) for part in
            ("train-clean-100", "dev-clean", "test-clean")}
    exp = tmp_path / "exp"
    args = ["train", "--train", str(data["train-clean-100"]), "--dev", str(data["dev-clean"]),
            "--exp-dir", str(exp), "--no-progress",
            "--config", str(ROOT / "conf/features/fbank80_16k.yaml"),
            "--config", str(ROOT / "recipes/librispeech/conf/large.yaml")]
    for setting in ("tokenizer.bpe_vocab_size=40", "model.num_layers=1", "model.hidden_size=16",
                    "model.proj_size=0", "model.conv_channels=4", "train.epochs=1",
                    "train.device=cpu", "train.precision=fp32", "train.warmup_steps=0",
                    "train.num_threads=1"):
        args += ["--set", setting]
    assert asr_main.main(args) == 0
    assert (exp / "final" / "bpe.model").is_file()
    lm = tmp_path / "lm.arpa"
    assert asr_main.main(["lm", "build", "--order", "3", "--kaldi", str(data["train-clean-100"] / "text"),
                          "-o", str(lm)]) == 0
    words = tmp_path / "words.txt"
    words.write_text("".join(f"{w}\n" for w in sorted({w for s in ls.FAKE_SENTENCES for w in s.split()})))
    assert spell.main(["--model", str(exp / "final"), str(words), "-o", str(tmp_path / "lexicon.txt")]) == 0
    out = tmp_path / "decode"
    assert asr_main.main(["decode", "--model", str(exp / "final"), "--data", str(data["test-clean"]),
                          "--out", str(out), "--decoder", "lexicon", "--lexicon", str(tmp_path / "lexicon.txt"),
                          "--lm", str(lm), "--beam-size", "8"]) == 0
    hyps = (out / "text").read_text().splitlines()
    assert len(hyps) == 6
    vocabulary = set(words.read_text().split())
    assert all(set(line.split()[1:]) <= vocabulary for line in hyps)  # lexicon words only
    assert (out / "wer").read_text().startswith("%WER ")
