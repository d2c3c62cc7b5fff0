"""tools/parse_options.sh and tools/run_local.sh, run through bash."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
PARSE_OPTIONS = TOOLS / "parse_options.sh"
RUN_LOCAL = TOOLS / "run_local.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not available")

# A recipe prologue: defaults, then the option parser, then print what it set and what is left.
SCRIPT = f"""
stage=0
nj=4
corpus_dir=/data/fsdd
use_gpu=false
help_message="Usage: run.sh [options] <out-dir>"
. {PARSE_OPTIONS}
echo "stage=$stage nj=$nj corpus_dir=$corpus_dir use_gpu=$use_gpu"
echo "rest=$#:$*"
"""


def parse(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", SCRIPT, "run.sh", *args], capture_output=True, text=True, timeout=30, cwd=cwd
    )


def test_defaults_unchanged() -> None:
    result = parse()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stage=0 nj=4 corpus_dir=/data/fsdd use_gpu=false",
        "rest=0:",
    ]


def test_sets_variables_both_forms() -> None:
    result = parse(
        "--stage",
        "3",
        "--nj=8",
        "--corpus-dir",
        "/tmp/my corpus",
        "--use-gpu",
        "true",
        "exp/out",
        "x",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stage=3 nj=8 corpus_dir=/tmp/my corpus use_gpu=true",
        "rest=2:exp/out x",
    ]


def test_equals_form_keeps_later_equals_signs() -> None:
    result = parse("--corpus-dir=a=b", "--stage=")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "stage= nj=4 corpus_dir=a=b use_gpu=false"


def test_unknown_option_exits_1() -> None:
    result = parse("--stgae", "3")
    assert result.returncode == 1
    assert "invalid option --stgae" in result.stderr
    assert result.stdout == ""
    result = parse("--nope=1")
    assert result.returncode == 1 and "invalid option --nope" in result.stderr


def test_missing_value_and_boolean_check() -> None:
    result = parse("--nj")
    assert result.returncode == 1 and "option --nj needs a value" in result.stderr
    result = parse("--use-gpu", "yes")
    assert result.returncode == 1 and "--use-gpu expects true or false, got 'yes'" in result.stderr


def test_help_lists_options() -> None:
    result = parse("--help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Usage: run.sh [options] <out-dir>"
    assert "  --stage 0" in lines and "  --nj 4" in lines
    assert "  --corpus-dir /data/fsdd" in lines and "  --use-gpu false" in lines
    assert not any(line.startswith("stage=") for line in lines)  # exited before the script body
    assert parse("-h").returncode == 0


def test_config_file(tmp_path: Path) -> None:
    config = tmp_path / "opts.conf"
    config.write_text("nj=2\nstage=5\n")
    result = parse("--config", str(config), "--stage", "7")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("stage=7 nj=2 ")
    result = parse("--config", str(tmp_path / "missing.conf"))
    assert result.returncode == 1 and "missing.conf' not found" in result.stderr


# ---- the Kaldi-named data-directory wrappers (each runs `asr data ...`)


def tool(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(TOOLS / name), *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """4 utterances of 2 speakers with real (tiny) audio files."""
    import numpy as np
    import soundfile as sf

    from asr.data.datadir import write_data_dir
    from asr.data.utterance import Utterance

    utts = []
    for spk in ("a", "b"):
        for i in range(2):
            wav = tmp_path / f"{spk}{i}.wav"
            sf.write(wav, np.zeros(800 * (i + 1), dtype=np.float32), 8000, subtype="PCM_16")
            utts.append(Utterance(f"{spk}-{i}", str(wav), f"word {spk}{i}", spk))
    return write_data_dir(tmp_path / "data", utts).path


def _ids(path: Path) -> list[str]:
    return [line.split()[0] for line in (path / "utt2spk").read_text().splitlines()]


def test_validate_and_fix_wrappers(data_dir: Path, tmp_path: Path) -> None:
    result = tool("validate_data_dir.sh", str(data_dir), cwd=tmp_path)
    assert result.returncode == 1  # Kaldi's default: feats.scp is required
    assert "feats.scp: file not found (if this is by design, use --no-feats)" in result.stdout
    result = tool("validate_data_dir.sh", "--no-feats", str(data_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (data_dir / "text").write_text("b-1 x\na-0 y\n")
    result = tool("fix_data_dir.sh", str(data_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{data_dir}: kept 2 of 4 utterances" in result.stdout
    assert _ids(data_dir) == ["a-0", "b-1"]
    assert tool("validate_data_dir.sh", cwd=tmp_path).returncode == 1  # usage


# Argument translation, checked against a stand-in `asr` on PATH that records its arguments.
WRAPPER_CASES = [
    ("validate_data_dir.sh", ["d"], "data validate --require-feats d"),
    ("validate_data_dir.sh", ["--no-feats", "--no-text", "d"], "data validate --no-text d"),
    ("validate_data_dir.sh", ["--no-spk-sort", "--no-wav", "--no-feats", "d"],
     "data validate --no-spk-sort --no-wav d"),
    ("fix_data_dir.sh", ["d"], "data fix d"),
    ("subset_data_dir.sh", ["--first", "src", "10", "dst"], "data subset src dst --first 10"),
    ("subset_data_dir.sh", ["--last", "src", "3", "dst"], "data subset src dst --last 3"),
    ("subset_data_dir.sh", ["--shortest", "src", "5", "dst"], "data subset src dst --shortest 5"),
    ("subset_data_dir.sh", ["--per-spk", "src", "2", "dst"], "data subset src dst --per-spk 2"),
    ("subset_data_dir.sh", ["--speakers", "src", "7", "dst"], "data subset src dst --speakers 7"),
    ("subset_data_dir.sh", ["src", "4", "dst"], "data subset src dst --evenly 4"),
    ("subset_data_dir.sh", ["--utt-list", "l", "src", "dst"], "data subset src dst --utt-list l"),
    ("subset_data_dir.sh", ["--spk-list", "l", "src", "dst"], "data subset src dst --spk-list l"),
    ("combine_data.sh", ["--extra-files", "x", "dst", "a", "b"], "data combine dst a b"),
    ("split_data.sh", ["d", "4"], "data split d 4"),
    ("split_data.sh", ["--per-utt", "d", "4"], "data split --per-utt d 4"),
    ("copy_data_dir.sh", ["--utt-prefix", "-p", "--spk-suffix", "s", "src", "dst"],
     "data copy --utt-prefix=-p --spk-suffix=s src dst"),
    ("perturb_data_dir_speed.sh", ["0.9", "src", "dst"], "data perturb-speed 0.9 src dst"),
    ("get_utt2dur.sh", ["--nj", "4", "d"], "data get-durations d"),
]
USAGE_ERRORS = [
    ("validate_data_dir.sh", []),
    ("validate_data_dir.sh", ["--bogus", "d"]),
    ("fix_data_dir.sh", ["a", "b"]),
    ("subset_data_dir.sh", ["--first", "src", "dst"]),
    ("subset_data_dir.sh", ["--utt-list", "l", "src"]),
    ("combine_data.sh", ["dst"]),
    ("split_data.sh", ["d"]),
    ("copy_data_dir.sh", ["src"]),
    ("perturb_data_dir_speed.sh", ["0.9", "same", "same"]),
    ("get_utt2dur.sh", []),
]


@pytest.fixture
def fake_asr(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "asr").write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    (bin_dir / "asr").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(name: str, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        calls.unlink(missing_ok=True)
        result = subprocess.run(["bash", str(TOOLS / name), *args], capture_output=True,
                                text=True, timeout=30, cwd=tmp_path, env=env)
        return result, calls.read_text().splitlines() if calls.exists() else []

    return run


@pytest.mark.parametrize(("name", "args", "expected"), WRAPPER_CASES)
def test_wrappers_translate_kaldi_arguments(fake_asr, name, args, expected) -> None:
    result, calls = fake_asr(name, *args)
    assert result.returncode == 0, result.stderr
    assert calls == [expected]


@pytest.mark.parametrize(("name", "args"), USAGE_ERRORS)
def test_wrappers_reject_bad_usage(fake_asr, name, args) -> None:
    result, calls = fake_asr(name, *args)
    assert result.returncode == 1 and calls == []
    assert result.stderr.strip()


def test_perturb_and_combine_wrappers(data_dir: Path, tmp_path: Path) -> None:
    result = tool("perturb_data_dir_speed.sh", "0.9", str(data_dir), "sp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    wav_scp = (tmp_path / "sp" / "wav.scp").read_text().splitlines()
    assert wav_scp[0] == f"sp0.9-a-0 sox -t wav {tmp_path / 'a0.wav'} -t wav - speed 0.9 |"
    result = tool("combine_data.sh", "all", str(data_dir), "sp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(_ids(tmp_path / "all")) == 8


# ---- tools/decode.sh: --nj parallel decoding, merged in order, scored once


def test_decode_sh_with_parallel_jobs(yesno_waves: Path, tmp_path: Path) -> None:
    from asr.cli import main as asr_main
    from asr.data.datadir import write_data_dir
    from asr.data.utterance import Utterance

    wavs = sorted(yesno_waves.glob("*.wav"))[:6]
    utts = []
    for i, wav in enumerate(wavs):
        spk = f"s{i % 3}"
        words = " ".join("YES" if x == "1" else "NO" for x in wav.stem.split("_"))
        utts.append(Utterance(f"{spk}-{wav.stem}", str(wav), words, spk))
    data = write_data_dir(tmp_path / "data", utts).path
    tiny = ["features.sample_rate=8000", "features.n_mels=16", "model.num_layers=1",
            "model.hidden_size=8", "model.frame_stack=3", "train.epochs=1",
            "tokenizer.type=word", "train.early_stop_patience=0"]
    args = ["train", "--train", str(data), "--exp-dir", str(tmp_path / "exp"), "--no-progress"]
    for override in tiny:
        args += ["--set", override]
    assert asr_main.main(args) == 0
    model = str(tmp_path / "exp" / "final")
    result = tool("decode.sh", "--nj", "2", "--cmd", f"{TOOLS / 'run_local.sh'}", "--device",
                  "cpu", model, str(data), "dec", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    dec = tmp_path / "dec"
    assert sorted(p.name for p in (dec / "log").iterdir()) == ["decode.1.log", "decode.2.log"]
    assert [_ids(data / "split2" / str(j)) for j in (1, 2)] == [  # whole speakers per job
        sorted(u.utt_id for u in utts if u.speaker in group) for group in (("s0",), ("s1", "s2"))]
    # The merged hypotheses are those of one job over the whole directory, in the same order.
    assert asr_main.main(["decode", "--model", model, "--data", str(data), "--out",
                          str(tmp_path / "one"), "--device", "cpu"]) == 0
    assert (dec / "text").read_text() == (tmp_path / "one" / "text").read_text()
    assert (dec / "wer").read_text().startswith("%WER ")
    one = (tmp_path / "one" / "wer").read_text().splitlines()
    assert (dec / "wer").read_text().splitlines() == [x for x in one if x.startswith("%")]
    assert "| s0 |" in (dec / "per_spk").read_text()


# ---- tools/make_feats.sh: feature dumps in --nj jobs, merged as one job would write them


def test_make_feats_sh_with_parallel_jobs_equals_one_job(yesno_waves: Path, tmp_path: Path) -> None:
    import kaldiio
    import numpy as np

    from asr.cli import main as asr_main
    from asr.data.datadir import write_data_dir
    from asr.data.utterance import Utterance

    wavs = sorted(yesno_waves.glob("*.wav"))[:6]
    utts = [Utterance(f"s{i % 3}-{w.stem}", str(w), "YES", f"s{i % 3}") for i, w in enumerate(wavs)]
    conf = tmp_path / "feats.yaml"
    conf.write_text("features:\n  sample_rate: 8000\n  n_mels: 23\n")
    data = write_data_dir(tmp_path / "data", utts).path
    result = tool("make_feats.sh", "--nj", "2", "--cmd", str(TOOLS / "run_local.sh"), "--feat-config",
                  str(conf), "--cmvn", "speaker", str(data), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (data / "log").iterdir()) == ["make_feats.1.log", "make_feats.2.log"]
    one = write_data_dir(tmp_path / "one", utts).path
    assert asr_main.main(["data", "compute-features", str(one), "--config", str(conf), "--cmvn", "speaker"]) == 0
    from fp_bounds import logmel_reference

    from asr.data.wav_audio import load_utterance_audio

    # Two jobs batch other utterances together, on other thread counts, than one job: each
    # log-mel value is within its float32 bound (fp_bounds) of the float64 reference, so the
    # two within twice it. Kaldi CMVN stats (float64 sums over a speaker's frames of x and
    # x^2) then agree to the sums of 2 tol and of 2 |x| 2 tol + (2 tol)^2.
    tols = {u.utt_id: logmel_reference(load_utterance_audio(u, 8000), 8000, 256, 80, 200, 23)[1]
            for u in utts}
    merged = dict(kaldiio.load_scp(str(data / "feats.scp")))
    single = dict(kaldiio.load_scp(str(one / "feats.scp")))
    assert list(merged) == sorted(merged) and sorted(merged) == sorted(single)
    for key in single:
        assert merged[key].shape == single[key].shape == tols[key].shape, key
        assert (np.abs(merged[key] - single[key]) <= 2 * tols[key]).all(), key
    merged_stats = dict(kaldiio.load_scp(str(data / "cmvn.scp")))
    single_stats = dict(kaldiio.load_scp(str(one / "cmvn.scp")))
    assert list(merged_stats) == sorted(merged_stats) and sorted(merged_stats) == sorted(single_stats)
    for spk in single_stats:
        own = [u.utt_id for u in utts if u.speaker == spk]
        tol = np.concatenate([2 * tols[u] for u in own])
        x = np.abs(np.concatenate([single[u] for u in own]).astype(np.float64))
        bound = np.zeros_like(single_stats[spk])
        bound[0, :-1] = tol.sum(0)
        bound[1, :-1] = (2 * x * tol + tol**2).sum(0)
        bound += 1e-12 * np.abs(single_stats[spk])  # float64 accumulation order
        assert merged_stats[spk][0, -1] == single_stats[spk][0, -1] == sum(len(single[u]) for u in own)
        assert (np.abs(merged_stats[spk] - single_stats[spk]) <= bound).all(), spk
    assert (data / "utt2num_frames").read_text() == (one / "utt2num_frames").read_text()
    assert (data / "frame_shift").read_text() == (one / "frame_shift").read_text()


def test_make_feats_sh_refuses_global_cmvn(yesno_waves: Path, tmp_path: Path) -> None:
    result = tool("make_feats.sh", "--cmvn", "global", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1 and "global statistics come from asr train" in result.stderr


# ---- utt2spk_to_spk2utt.sh / spk2utt_to_utt2spk.sh (Kaldi's utils/*.pl)


def test_utt2spk_spk2utt_conversions_match_the_data_dir_writer(tmp_path: Path) -> None:
    from asr.data.datadir import write_data_dir
    from asr.data.utterance import Utterance

    utts = [Utterance(f"{spk}-{i:02d}", "/dev/null", "x", spk) for spk in ("bob", "al", "cy")
            for i in range(3)]
    data = write_data_dir(tmp_path / "d", utts).path
    spk2utt = subprocess.run(["bash", str(TOOLS / "utt2spk_to_spk2utt.sh"), str(data / "utt2spk")],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    assert spk2utt == (data / "spk2utt").read_text()
    utt2spk = subprocess.run(["bash", str(TOOLS / "spk2utt_to_utt2spk.sh")], input=spk2utt,
                             capture_output=True, text=True, timeout=30, check=True).stdout
    assert utt2spk == (data / "utt2spk").read_text()
    bad = subprocess.run(["bash", str(TOOLS / "utt2spk_to_spk2utt.sh")], input="u1 s1\nu2\n",
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "line 2" in bad.stderr
