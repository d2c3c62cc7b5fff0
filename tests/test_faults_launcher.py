"""A failed ``--nj`` job: ``tools/decode.sh`` (through ``tools/run_local.sh``) names the job's
log, merges nothing, and exits non-zero, so a recipe (``set -e``) stops there."""

from __future__ import annotations

import os
import subprocess

from faults_utils import ROOT, make_data_dir, train_args

from asr.cli import main as asr_main


def test_failed_decode_job_names_its_log_and_stops_the_run(tmp_path):
    exp = tmp_path / "exp"
    assert asr_main.main(train_args(make_data_dir(tmp_path / "train", 8), exp, None, "train.epochs=1")) == 0
    data = tmp_path / "test"
    make_data_dir(tmp_path / "spk1", 3, prefix="spk1")
    make_data_dir(tmp_path / "spk2", 3, prefix="spk2")
    data.mkdir()
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        lines = (tmp_path / "spk1" / name).read_text() + (tmp_path / "spk2" / name).read_text()
        (data / name).write_text(lines)
    (tmp_path / "spk2" / "wav" / "spk2-u001.wav").write_bytes(b"RIFF....WAVEfmt garbage")

    out = tmp_path / "decode"
    recipe = tmp_path / "run.sh"  # a recipe stage as the recipes write them
    recipe.write_text(
        "set -euo pipefail\n"
        f"{ROOT}/tools/decode.sh --nj 2 --device cpu {exp / 'final'} {data} {out}\n"
        f"touch {out}/.done\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["bash", str(recipe)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1, result.stderr
    logs = sorted((out / "log").glob("decode.*.log"))
    assert len(logs) == 2
    failed = [p for p in logs if p.read_text().splitlines()[-1].startswith("# Ended (code 1)")]
    assert len(failed) == 1
    assert f"1 / 2 job(s) failed; see {failed[0]}" in result.stderr  # the log is named
    assert "spk2-u001" in failed[0].read_text()  # and it says which utterance and why
    assert "more than --max-bad-utts 0" in failed[0].read_text()
    assert not (out / "text").exists() and not (out / ".done").exists()  # the run stopped
