"""``asr benchmark train``: one table with our trainer and the bare
loop on the same batches (tiny settings so that it runs in seconds)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import requires_cpu_bf16_lstm

from asr.cli import main as asr_main

TINY = ["--steps", "2", "--warmup", "1", "--repeat", "1", "--min-seconds", "0.5", "--max-seconds", "1",
        "--set", "model.hidden_size=8", "--set", "model.num_layers=1",
        "--set", "train.max_frames_per_batch=600", "--threads", "1"]


@requires_cpu_bf16_lstm
def test_benchmark_prints_one_table_with_ratios(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    code = asr_main.main(["benchmark", "train", *TINY, "--variants", "bare,ours,ours-precomputed,peephole",
                          "--precision", "fp32,bf16", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "device CPU" in text and "commit " in text and "1 x 8 biLSTM" in text
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| trainer | precision | frames/s | x bare loop")
    assert len(lines) == 1 + 8
    assert "| bare | fp32 |" in text and "| ours | bf16 |" in text
    data = json.loads(out.read_text())
    rows = {(r["variant"], r["precision"]): r for r in data["rows"]}
    assert rows[("bare", "fp32")]["ratio"] == 1.0
    for row in rows.values():
        assert row["frames_per_s"] > 0 and row["ms_per_update"] > 0
        assert row["peak_mib"] is None  # CPU: no GPU memory figure
    ours = rows[("ours", "fp32")]
    assert abs(ours["ratio"] - ours["frames_per_s"] / rows[("bare", "fp32")]["frames_per_s"]) < 1e-9


def test_unknown_row_is_a_one_line_error(capsys) -> None:
    assert asr_main.main(["benchmark", "train", *TINY, "--variants", "bare,fast"]) == 1
    err = capsys.readouterr().err
    assert "--variants: unknown row 'fast'" in err and len(err.strip().splitlines()) == 1
