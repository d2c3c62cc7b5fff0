"""recipes/an4/run.sh end to end on a fabricated AN4 corpus (NIST SPHERE audio) with a tiny
model: every stage runs, the data dirs validate, every decoder is scored on dev and test, the
LM weight is tuned on dev, and the best system lands in the model store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_an4 import make_an4  # a sibling test module (tests/ is on sys.path)

from asr import store

ROOT = Path(__file__).resolve().parents[1]
TINY = (
    "--set model.num_layers=1 --set model.hidden_size=16 --set train.epochs=2 "
    "--set train.features_on_the_fly=false --set augment.speed_perturb=false "
    "--set train.warmup_steps=0 --set train.num_threads=1"
)


def recipe_copy(tmp_path: Path) -> Path:
    """The recipe under tmp_path/recipes/an4, with the toolkit's .venv, tools/ and conf/
    linked in next to it, so that path.sh resolves them and data/ and exp/ stay in tmp_path."""
    for name in (".venv", "tools", "conf"):
        (tmp_path / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "recipes" / "an4", tmp_path / "recipes" / "an4",
                    ignore=shutil.ignore_patterns("data", "exp", "downloads"))
    return tmp_path / "recipes" / "an4"


def run_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoders: list[str],
               phone: bool) -> None:
    """Every stage; ``decoders`` of the character system; the phone system when ``phone``."""
    make_an4(tmp_path / "corpus" / "an4", "sph")
    recipe = recipe_copy(tmp_path)
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    args = ["./run.sh", "--corpus-dir", str(tmp_path / "corpus"), "--preset", "cpu",
            "--train-opts", TINY, "--nj", "1", "--lm-weights", "0,1", "--word-scores", "0,1",
            "--beam-size", "4", "--dev-speakers", "2", "--char-decoders", " ".join(decoders),
            "--systems", "char phone" if phone else "char"]
    proc = subprocess.run(args, cwd=recipe, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    for name in ("train", "dev", "test"):  # stage 0 ran `asr data validate` on each
        assert f"data/{name}: valid (" in proc.stdout
    exp = recipe / "exp" / "char_cpu"
    for decoder in decoders:
        # Decoders with an LM decode test only: dev is where their weights were tuned.
        for part in ("dev", "test") if decoder in ("greedy", "beam") else ("test",):
            wer = (exp / f"decode_{decoder}_{part}" / "wer").read_text().splitlines()
            assert wer[0].startswith("%WER ")
    # The LM weights are tuned on dev only: 2 x 2 pairs scored on dev, the best applied to test.
    summary = json.loads((exp / "decode_lexicon_lm_test" / "score.json").read_text())
    assert summary["sweep"]["tuned_on"] == "data/dev"
    assert len(list((exp / "decode_lexicon_lm_test" / "tune").glob("wer_*"))) == 4
    rows = [("char_cpu", d) for d in decoders]
    if phone:  # CMU phones with a word boundary; words from the lexicon decoder
        tokens = (recipe / "exp" / "phone_cpu" / "final" / "tokens.txt").read_text().split()[::2]
        assert tokens[:3] == ["<blank>", "<unk>", "<space>"]
        assert {"EY", "S", "T", "AA"} <= set(tokens)
        assert "A EY <space>" in (recipe / "exp" / "phone_cpu" / "lexicon.txt").read_text()
        rows += [("phone_cpu", "lexicon_lm"), ("phone_cpu", "greedy, in phones (%WER = PER)")]
        ref = (recipe / "data" / "test_phones" / "text").read_text().splitlines()
        assert ref == ["mpqr-an6-mpqr-b G OW Y EH S", "mpqr-cen6-mpqr-b EY B IY S T AA P"]
    table = (recipe / "exp" / "results.md").read_text().splitlines()
    assert len(table) == 2 + len(rows)
    for line, (system, decoder) in zip(table[2:], rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:2] == [system, decoder]
        assert all(float(c) >= 0 for c in cells[2:6])  # dev and test WER and CER all present
        assert (cells[6] != "") == decoder.endswith("_lm")
    assert store.list_models() == ["an4"]
    # The installed model carries the search with the best dev WER, and its files.
    from asr.decode.defaults import read_decoding

    best = min(
        (float(c[2]), c[0], c[1]) for c in
        ([x.strip() for x in line.strip("|").split("|")] for line in table[2:]) if "phones" not in c[1])
    decoding = read_decoding(store.store_dir() / "an4")
    assert decoding is not None and decoding.decoder == {"greedy": "greedy", "beam": "beam"}.get(
        best[2], best[2].split("_")[0])
    if decoding.decoder == "lexicon":
        assert (store.store_dir() / "an4" / "lexicon.txt").read_text() == (
            recipe / ("exp/phone_cpu/lexicon.txt" if best[1] == "phone_cpu" else "data/lang/lexicon_char.txt")).read_text()
        assert decoding.tuned_on == "data/dev" and decoding.tuned_wer == pytest.approx(best[0], abs=0.01)
    assert f"an4\t{store.store_dir() / 'an4'}\t{decoding.describe()}" in proc.stdout
    if phone:  # a rerun finds every stage done: only the table and the install run again
        again = subprocess.run(args, cwd=recipe, env=env, capture_output=True, text=True,
                               timeout=300)
        assert again.returncode == 0 and "training" not in again.stdout


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "asr").exists(), reason="needs the project .venv")
def test_recipe_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The character system: greedy search through tools/decode.sh, and lexicon + LM decoding
    with the LM weights swept on dev."""
    run_recipe(tmp_path, monkeypatch, ["greedy", "lexicon_lm"], phone=False)


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "asr").exists(), reason="needs the project .venv")
def test_recipe_end_to_end_both_systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both systems, every decoder, and a rerun that skips every finished stage."""
    run_recipe(tmp_path, monkeypatch, ["greedy", "beam", "beam_lm", "lexicon_lm"], phone=True)


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "asr").exists(), reason="needs the project .venv")
def test_rover_stage_trains_combines_and_installs_what_transcribe_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage 8: three systems (two character seeds and a phone system), each trained on train
    with its search chosen on dev, then on train + dev; their test hypotheses combined by
    ROVER; the combination installed as one model that `transcribe` runs to the same words."""
    make_an4(tmp_path / "corpus" / "an4", "sph")
    recipe = recipe_copy(tmp_path)
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))
    env = os.environ | {"OMP_NUM_THREADS": "1", "ASR_MODEL_DIR": str(tmp_path / "store")}
    common = ["--corpus-dir", str(tmp_path / "corpus"), "--preset", "cpu", "--train-opts", TINY,
              "--nj", "1", "--lm-weights", "0,1", "--word-scores", "0", "--beam-size", "4",
              "--dev-speakers", "2", "--char-decoders", "greedy lexicon_lm"]
    bad = subprocess.run(["./run.sh", *common, "--stage", "8", "--rover", "char:0 words:1"], cwd=recipe,
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "--rover takes UNIT:SEED[:PRESET]" in bad.stderr
    bad = subprocess.run(["./run.sh", *common, "--stage", "8", "--rover", "char:0:cpu+nope"], cwd=recipe,
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "--rover char:0:cpu+nope: no conf/nope.yaml" in bad.stderr
    proc = subprocess.run(["./run.sh", *common, "--stage", "0", "--stop-stage", "1"], cwd=recipe,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = subprocess.run(["./run.sh", *common, "--stage", "8", "--rover", "char:0 phone:0 char:1:cpu+utt_cmvn"],
                          cwd=recipe, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exp = recipe / "exp"
    members = ["char_cpu", "phone_cpu", "char_cpu_utt_cmvn_s1"]
    for name in members:
        assert (exp / name / "decode_final_dev" / "text").is_file()
        assert (exp / f"{name}_traindev" / "final" / "decoding.yaml").is_file()
    seeds = [yaml.safe_load((exp / f"{n}_traindev" / "config.yaml").read_text())["train"]["seed"] for n in members]
    assert seeds == [0, 0, 1]
    cmvn = [yaml.safe_load((exp / f"{n}_traindev" / "config.yaml").read_text())["features"]["cmvn"] for n in members]
    assert cmvn == ["global", "global", "utterance"]  # the third member's preset: cpu + utt_cmvn
    assert (exp / "rover" / "decode_test" / "wer").read_text().startswith("%WER ")
    assert "ROVER on test (systems trained on train + dev): %WER" in proc.stdout
    installed = store.store_dir() / "an4"
    assert yaml.safe_load((installed / "rover.yaml").read_text())["systems"] == [".", "system-2", "system-3"]
    assert (installed / "system-2" / "lexicon.txt").read_text() == (exp / "phone_cpu_traindev" / "lexicon.txt").read_text()
    # transcribe --model an4 gives the words the recipe scored.
    hyps = dict(line.partition(" ")[::2] for line in (exp / "rover" / "decode_test" / "text").read_text().splitlines())
    wavs = dict(line.split(maxsplit=1) for line in (recipe / "data" / "test" / "wav.scp").read_text().splitlines())
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "transcribe"), "--model", "an4", "-q", "--device", "cpu",
                          *wavs.values()], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = {Path(line.split(":")[0]).stem: line.partition(": ")[2] for line in out.stdout.splitlines()}
    assert got == {Path(wav).stem: hyps.get(utt, "") for utt, wav in wavs.items()}
    # The same systems by n-best rescoring: nothing trained again, weights swept on dev, the
    # train + dev systems installed with them, and transcribe gives the words scored on test.
    bad = subprocess.run(["./run.sh", *common, "--stage", "8", "--rover", "char:0", "--combine", "vote"],
                         cwd=recipe, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "--combine takes 'rover' or 'rescore'" in bad.stderr
    # A decoder stored in a model by hand does not leak into the recipe's greedy decode of it.
    assert subprocess.run([str(ROOT / ".venv" / "bin" / "asr"), "models", "set-decoder", "exp/char_cpu/final",
                           "--decoder", "lexicon", "--lexicon", "data/lang/lexicon_char.txt"],
                          cwd=recipe, env=env, capture_output=True, text=True, timeout=300).returncode == 0
    shutil.rmtree(exp / "char_cpu" / "decode_greedy_dev")
    proc = subprocess.run(["./run.sh", *common, "--stage", "8", "--rover", "char:0 phone:0 char:1:cpu+utt_cmvn",
                           "--combine", "rescore"], cwd=recipe, env=env, capture_output=True, text=True, timeout=600)
    parts = list((exp / "char_cpu" / "decode_greedy_dev" / "part").glob("*/score.json"))  # each job's asr decode
    assert parts and all("decoder" not in json.loads(p.read_text()) for p in parts)  # greedy: no search recorded
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "training" not in proc.stdout
    assert "n-best rescoring on test (systems trained on train + dev): %WER" in proc.stdout
    assert sorted(p.name for p in (exp / "rescore" / "decode_dev").glob("wer_*")) == ["wer_0_0", "wer_1_0"]
    spec = yaml.safe_load((installed / "rover.yaml").read_text())
    chosen = json.loads((exp / "rescore" / "decode_dev" / "score.json").read_text())["rescore"]
    assert spec["combine"] == "rescore" and spec["lm_weight"] == chosen["lm_weight"]
    assert spec["from"] == [str(Path("exp") / f"{n}_traindev" / "final") for n in members]
    hyps = dict(line.partition(" ")[::2] for line in (exp / "rescore" / "decode_test" / "text").read_text().splitlines())
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "transcribe"), "--model", "an4", "-q", "--device", "cpu",
                          *wavs.values()], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = {Path(line.split(":")[0]).stem: line.partition(": ")[2] for line in out.stdout.splitlines()}
    assert got == {Path(wav).stem: hyps.get(utt, "") for utt, wav in wavs.items()}
