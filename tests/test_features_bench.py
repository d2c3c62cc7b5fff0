"""``asr benchmark features`` prints its table on a few real recordings."""

from __future__ import annotations

import json
from pathlib import Path

from asr.cli.main import main


def test_features_benchmark_table(fsdd_recordings: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    argv = ["benchmark", "features", "--corpus", "fsdd", "--data-root",
            str(fsdd_recordings.parents[1]), "--max-files", "4", "--repeat", "1",
            "--n-mels", "40", "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "recordings: FSDD (all), 4 files" in text
    assert "| librosa melspectrogram + log, per utterance (baseline) | CPU | numpy's |" in text
    rows = json.loads(out.read_text())["rows"]
    labels = [r["front end"] for r in rows]
    assert "asr LogMel, batched" in labels and "asr KaldiFbank, batched" in labels
    for row in rows:
        if row["device"] == "CPU":
            assert row["audio_s_per_s"] > 0
        if row["max_abs_diff"].endswith("vs librosa"):
            assert float(row["max_abs_diff"].split()[0]) <= 1e-3  # equal output


def test_corpus_location_comes_from_arguments_or_the_recipe_variables(fsdd_recordings: Path, monkeypatch,
                                                                      capsys) -> None:
    import argparse

    from asr.benchmarks.features import _recordings

    monkeypatch.delenv("AN4_DIR", raising=False)
    monkeypatch.delenv("FSDD_DIR", raising=False)
    assert main(["benchmark", "features", "--max-files", "2"]) == 1
    err = capsys.readouterr().err
    assert "--corpus fsdd: where is it?" in err and "$FSDD_DIR" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("FSDD_DIR", str(fsdd_recordings.parent))
    args = argparse.Namespace(corpus="auto", data_root=None, max_files=2)
    name, files = _recordings(args)
    assert name == "FSDD (all)" and [f.parent for f in files] == [fsdd_recordings] * 2
