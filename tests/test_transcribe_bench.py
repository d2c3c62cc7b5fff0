"""``asr benchmark transcribe`` end to end on a tiny model and four recordings (CPU; slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transcribe_utils import make_model_dir

from asr.cli.main import main as asr_main


@pytest.mark.slow  # two fresh interpreters importing torch: about a minute on 2 busy cores
def test_benchmark_table_and_json(tmp_path: Path, fsdd_recordings: Path, capsys) -> None:
    model = make_model_dir(tmp_path / "model")
    data = tmp_path / "data"
    data.mkdir()
    files = sorted(fsdd_recordings.glob("7_yweweler_*.wav"))[:4]
    (data / "wav.scp").write_text("".join(f"u{i} {f}\n" for i, f in enumerate(files)))
    (data / "text").write_text("".join(f"u{i} seven\n" for i in range(4)))
    (data / "utt2spk").write_text("".join(f"u{i} u{i}\n" for i in range(4)))
    (data / "spk2utt").write_text("".join(f"u{i} u{i}\n" for i in range(4)))
    out = tmp_path / "rows.json"
    code = asr_main(["benchmark", "transcribe", "--model", str(model), "--data", str(data),
                     "--presets", "", "--long-minutes", "0.5", "--chunk-length", "10",
                     "--devices", "cpu,cuda", "--threads", "1", "--no-pocketsphinx",
                     "--json", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    assert "| system | weights | device | threads | input | RTF |" in table
    rows = json.loads(out.read_text())["rows"]
    cpu = [r for r in rows if r["device"] == "cpu"]
    assert [r["input"] for r in cpu] == ["files", "long"]
    for row in cpu:
        assert 0 < row["rtf"] < 5 and 100 < row["peak_rss_mb"] < 4000 and row["threads"] == 1
    assert cpu[0]["wer"] >= 0 and cpu[1]["audio_s"] == 30.0
    cuda = [r for r in rows if r["device"] == "cuda"]
    assert len(cuda) == 2 and all("rtf" in r or r["note"] == "n/a (no CUDA)" for r in cuda)
