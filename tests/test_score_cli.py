"""`asr score` end to end: Kaldi text and sclite trn input, every section of the report,
JSON, details files, bootstrap, two-system comparison, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr.cli import main as asr_main

REF = {
    "s1-a": "the cat sat down",
    "s1-b": "one two three",
    "s2-a": "Hello, World!",
    "s2-b": "yes no",
}
HYP = {"s1-a": "the bat sat", "s1-b": "one too three four", "s2-a": "hello world"}
HYP2 = {"s1-a": "the cat sat down", "s1-b": "one two three", "s2-a": "hello world", "s2-b": "yes"}


def write_text(path: Path, entries: dict[str, str]) -> Path:
    path.write_text("".join(f"{u} {t}\n".replace(" \n", "\n") for u, t in entries.items()))
    return path


def write_trn(path: Path, entries: dict[str, str]) -> Path:
    path.write_text("".join(f"{t} ({u})\n" for u, t in entries.items()))
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = asr_main.main(["score", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "ref": write_text(tmp_path / "ref.txt", REF),
        "hyp": write_text(tmp_path / "hyp.txt", HYP),
        "hyp2": write_text(tmp_path / "hyp2.txt", HYP2),
        "utt2spk": write_text(tmp_path / "utt2spk", {u: u.split("-")[0] for u in REF}),
    }


def test_report_sections(files, capsys) -> None:
    code, out, _ = run(capsys, "--ref", str(files["ref"]), "--hyp", str(files["hyp"]),
                       "--utt2spk", str(files["utt2spk"]), "--per-utt", "--top", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == [
        "%WER 72.73 [ 8 / 11, 1 ins, 3 del, 4 sub ]",
        "%SER 100.00 [ 4 / 4 ]",
        "%CER 45.83 [ 22 / 48, 5 ins, 13 del, 4 sub ]",
    ]
    assert lines[3] == "# 1 utterance(s) had no hypothesis (scored as deletions): s2-b"
    assert lines[4] == "# normalisation: none (words compared exactly as written)"
    assert "| s1 | 2 | 7 | 57.14 | 1 | 1 | 2 |" in lines
    assert "| s2 | 2 | 4 | 100.00 | 0 | 2 | 2 |" in lines
    subs = lines.index("# most frequent substitutions (count  ref -> hyp)")
    assert lines[subs + 1 : subs + 4] == ["     1  Hello, -> hello", "     1  World! -> world", "     1  cat -> bat"]
    assert "     1  four" in lines[lines.index("# most frequent insertions (count  word)") :]
    # Kaldi per_utt: ref/hyp/op rows line up, *** for the empty side, #csid = C S I D.
    assert "s1-a ref the cat sat down" in lines
    assert "s1-a hyp the bat sat ***" in lines
    assert "s1-a op  C   S   C   D" in lines
    assert "s1-a #csid 2 1 0 1" in lines
    assert "s1-b #csid 2 1 1 0" in lines
    assert "s2-b hyp *** ***" in lines


def test_basic_normalisation_is_reported(files, capsys) -> None:
    code, out, _ = run(capsys, "--ref", str(files["ref"]), "--hyp", str(files["hyp"]), "--normalize", "basic")
    assert code == 0
    assert out.splitlines()[0] == "%WER 54.55 [ 6 / 11, 1 ins, 3 del, 2 sub ]"
    assert "# normalisation: basic (case folded, punctuation stripped" in out


def test_json_and_details(files, tmp_path, capsys) -> None:
    js, details = tmp_path / "score.json", tmp_path / "details"
    code, out, _ = run(capsys, "--ref", str(files["ref"]), "--hyp", str(files["hyp"]),
                       "--utt2spk", str(files["utt2spk"]), "--json", str(js), "--details", str(details),
                       "--bootstrap", "100", "--seed", "1")
    assert code == 0
    data = json.loads(js.read_text())
    assert data["wer"]["errors"] == 8 and data["wer"]["ref_len"] == 11 and data["ser"] == 100.0
    assert data["cer"]["errors"] == 22
    assert data["normalize"] == "none" and data["format"] == "text" and data["missing"] == ["s2-b"]
    assert data["per_speaker"]["s1"]["ref_len"] == 7
    assert data["utterances"]["s1-a"] == {
        "speaker": "s1", "ref": ["the", "cat", "sat", "down"], "hyp": ["the", "bat", "sat", "***"],
        "op": ["C", "S", "C", "D"], "csid": [2, 1, 0, 1],
    }
    assert {"kind": "substitution", "ref": "cat", "hyp": "bat", "count": 1} in data["ops"]
    assert data["bootstrap"]["resamples"] == 100 and data["bootstrap"]["seed"] == 1
    assert data["bootstrap"]["low"] <= data["wer"]["rate"] <= data["bootstrap"]["high"]
    assert (details / "wer").read_text().splitlines()[0] == out.splitlines()[0]
    assert "s1-a #csid 2 1 0 1" in (details / "per_utt").read_text()
    assert "substitution" in (details / "ops").read_text()
    assert (details / "per_spk").read_text().startswith("| speaker |")
    assert json.loads((details / "score.json").read_text())["wer"]["errors"] == 8
    # The same seed gives the same interval.
    js2 = tmp_path / "again.json"
    run(capsys, "--ref", str(files["ref"]), "--hyp", str(files["hyp"]), "--json", str(js2),
        "--bootstrap", "100", "--seed", "1")
    assert json.loads(js2.read_text())["bootstrap"] == data["bootstrap"]


def test_trn_input_and_speakers_from_ids(tmp_path, capsys) -> None:
    ref = write_trn(tmp_path / "ref.trn", {"spkA-1": "a b c", "spkA-2": "d", "spkB_1": "e f"})
    hyp = write_trn(tmp_path / "hyp.trn", {"spkA-1": "a c", "spkA-2": "d", "spkB_1": "e g"})
    code, out, _ = run(capsys, "--ref", str(ref), "--hyp", str(hyp), "--format", "trn")
    assert code == 0
    assert out.splitlines()[0] == "%WER 33.33 [ 2 / 6, 0 ins, 1 del, 1 sub ]"
    assert "| spkA | 2 | 4 | 25.00 | 0 | 1 | 0 |" in out
    assert "| spkB | 1 | 2 | 50.00 | 0 | 0 | 1 |" in out


def test_two_systems(files, tmp_path, capsys) -> None:
    js = tmp_path / "cmp.json"
    code, out, _ = run(capsys, "--ref", str(files["ref"]), "--hyp", str(files["hyp"]),
                       "--hyp2", str(files["hyp2"]), "--bootstrap", "300", "--json", str(js))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"== A: {files['hyp']}"
    assert lines[1] == "%WER 72.73 [ 8 / 11, 1 ins, 3 del, 4 sub ]"
    assert f"== B: {files['hyp2']}" in lines
    assert "%WER 27.27 [ 3 / 11, 0 ins, 1 del, 2 sub ]" in lines
    assert lines[-3] == "# paired bootstrap (Bisani & Ney 2004): 300 resamples of 4 utterances, seed 0"
    assert lines[-2].startswith("# WER(A) - WER(B) = 45.45, 95% CI [")
    assert lines[-1].startswith("# P(B better than A) = ")
    data = json.loads(js.read_text())
    assert data["A"]["wer"]["errors"] == 8 and data["B"]["wer"]["errors"] == 3
    assert data["comparison"]["delta"] == pytest.approx(100 * 5 / 11)
    assert data["comparison"]["prob_b_better"] > 0.5


@pytest.mark.parametrize(
    ("extra_args", "message"),
    [
        (["--bootstrap", "-1"], "--bootstrap -1: give a positive number"),
        (["--confidence", "1.5"], "--confidence 1.5"),
        (["--top", "-2"], "--top -2"),
    ],
)
def test_bad_options_are_one_line_errors(files, capsys, extra_args, message) -> None:
    code, out, err = run(capsys, "--ref", str(files["ref"]), "--hyp", str(files["hyp"]), *extra_args)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_extra_hypotheses(files, tmp_path, capsys) -> None:
    hyp = write_text(tmp_path / "extra.txt", HYP | {"zz-9": "stray"})
    code, _, err = run(capsys, "--ref", str(files["ref"]), "--hyp", str(hyp))
    assert code == 1 and "'zz-9'" in err and "--ignore-extra" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = run(capsys, "--ref", str(files["ref"]), "--hyp", str(hyp), "--ignore-extra")
    assert code == 0
    assert "# 1 hypothesis utterance(s) without a reference were ignored (--ignore-extra): zz-9" in out


def test_malformed_trn_names_file_and_line(tmp_path, capsys) -> None:
    ref = tmp_path / "ref.trn"
    ref.write_text("a b (u-1)\nno id here\n")
    code, _, err = run(capsys, "--ref", str(ref), "--hyp", str(ref), "--format", "trn")
    assert code == 1
    assert f"{ref}:2: no '(utterance-id)' at the end of the line" in err
    ref.write_text("a (u-1)\nb (u-1)\n")
    code, _, err = run(capsys, "--ref", str(ref), "--hyp", str(ref), "--format", "trn")
    assert code == 1 and f"{ref}:2: duplicate utterance id 'u-1'" in err


def test_missing_file(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "--ref", str(tmp_path / "nope"), "--hyp", str(tmp_path / "nope"))
    assert code == 1 and "nope" in err and len(err.strip().splitlines()) == 1


def test_asr_score_starts_without_torch(tmp_path: Path) -> None:
    """Scoring is pure text work: the command must not pay for importing torch."""
    import subprocess
    import sys

    (tmp_path / "ref").write_text("u1 a b c\n")
    (tmp_path / "hyp").write_text("u1 a x c\n")
    code = ("import sys; from asr.cli.main import main; "
            f"rc = main(['score', '--ref', {str(tmp_path / 'ref')!r}, '--hyp', {str(tmp_path / 'hyp')!r}]); "
            "print('torch' in sys.modules, rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines()[0].startswith("%WER 33.33 [ 1 / 3,")
    assert out.stdout.splitlines()[-1] == "False 0", out.stderr


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`asr score ... | head -n 1`: no BrokenPipeError traceback, exit status 0."""
    import subprocess
    import sys

    lines = "".join(f"u{i:05d} a b c\n" for i in range(3000))
    (tmp_path / "ref").write_text(lines)
    (tmp_path / "hyp").write_text(lines.replace(" b ", " x "))
    script = (f"{sys.executable} -m asr.cli.main score --ref {tmp_path / 'ref'} --hyp {tmp_path / 'hyp'} "
              "--per-utt | head -n 1; echo status=${PIPESTATUS[0]}")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines() == ["%WER 33.33 [ 3000 / 9000, 0 ins, 0 del, 3000 sub ]", "status=0"]
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr
