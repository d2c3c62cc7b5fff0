"""WebDataset shards of a data dir: writing, round trip, checks, and a 2-rank x 2-worker epoch
that reads every utterance exactly once."""

from __future__ import annotations

import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import yaml
from faults_utils import make_data_dir

pytest.importorskip("webdataset")

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from asr.cli.main import main  # noqa: E402
from asr.data import read_data_dir  # noqa: E402
from asr.data.shards import (  # noqa: E402
    ShardStream,
    check_shards,
    escape_key,
    read_manifest,
    unescape_key,
    write_shards,
)
from asr.data.utterance import RecordingSegment, Utterance  # noqa: E402
from asr.data.wav_audio import load_utterance_audio  # noqa: E402
from asr.errors import DataDirError  # noqa: E402

RATE = 8000


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shards")
    data = make_data_dir(root / "data", 24)
    out = root / "shards"
    write_shards(data, out, RATE, utts_per_shard=3)
    return data, out


def _read_all(stream: ShardStream) -> dict[str, tuple]:
    return {u.utt_id: u for u in stream}


def test_manifest_counts_and_balanced_shards(sharded) -> None:
    data, out = sharded
    manifest = read_manifest(out)
    assert [s["name"] for s in manifest["shards"]] == [f"shard-{i:06d}.tar" for i in range(8)]
    assert [s["utterances"] for s in manifest["shards"]] == [3] * 8
    assert manifest["utterances"] == 24 and manifest["sample_rate"] == RATE
    assert manifest["audio_format"] == "flac" and manifest["skipped"] == []
    durations = {u: float(v) for u, v in
                 (line.split() for line in (data / "utt2dur").read_text().splitlines())}
    assert manifest["hours"] == pytest.approx(sum(durations.values()) / 3600, abs=1e-5)
    assert manifest["source"]["data_dir"] == str(data.absolute())
    assert set(manifest["source"]["files"]) >= {"wav.scp", "text", "utt2spk", "utt2dur"}
    assert not list(out.glob(".*.tmp"))
    # Plain tars: per utterance <key>.flac and <key>.json; assigned in a shuffled order.
    with tarfile.open(out / "shard-000000.tar") as tar:
        names = tar.getnames()
    assert len(names) == 6 and {Path(n).suffix for n in names} == {".flac", ".json"}
    first_ids = sorted(n.split(".")[0] for n in names)
    assert first_ids != ["spk1-u000", "spk1-u001", "spk1-u002"]
    check_shards(out, data)


def test_round_trip_samples_and_metadata(sharded) -> None:
    data, out = sharded
    read = _read_all(ShardStream(out))
    source = read_data_dir(data)
    assert set(read) == {u.utt_id for u in source.utterances}
    for utt in source.utterances:
        got = read[utt.utt_id]
        expected = load_utterance_audio(utt, RATE)
        assert got.samples.dtype == np.float32 and got.samples.shape == expected.shape
        assert np.max(np.abs(got.samples - expected)) <= 1 / 32768
        assert got.text == utt.text and got.speaker == utt.speaker
        assert got.duration == pytest.approx(len(expected) / RATE, abs=1e-5)


def test_keys_escape_reversibly_and_dotted_ids_round_trip(tmp_path: Path) -> None:
    for utt_id in ["a.b", "spk.1-u.2.3", "x%2Ey", "a/b", "__meta__", "_x", "plain", "%", "a..b"]:
        key = escape_key(utt_id)
        assert "." not in key and "/" not in key and not key.startswith("_")
        assert unescape_key(key) == utt_id
    assert escape_key("spk1-u001") == "spk1-u001"
    data = make_data_dir(tmp_path / "data", 5, prefix="spk.1")
    write_shards(data, tmp_path / "shards", RATE, utts_per_shard=2)
    read = _read_all(ShardStream(tmp_path / "shards"))
    assert sorted(read) == [f"spk.1-u{i:03d}" for i in range(5)]
    assert {u.speaker for u in read.values()} == {"spk.1"}
    with tarfile.open(tmp_path / "shards" / "shard-000000.tar") as tar:
        assert all(n.count(".") == 1 for n in tar.getnames())


def test_segments_are_cut_before_sharding(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    utts = []
    for r in range(2):
        wav = tmp_path / f"rec{r}.wav"
        sf.write(wav, (0.3 * rng.standard_normal(RATE)).astype(np.float32), RATE, subtype="PCM_16")
        for s in range(3):
            utts.append(Utterance(f"spk-rec{r}-{s}", str(wav), f"t{s}", "spk",
                                  RecordingSegment(f"rec{r}", 0.3 * s, 0.3 * s + 0.25)))
    from asr.data import write_data_dir

    data = write_data_dir(tmp_path / "data", utts).path
    write_shards(data, tmp_path / "shards", RATE, utts_per_shard=4)
    read = _read_all(ShardStream(tmp_path / "shards"))
    for utt in read_data_dir(data).utterances:
        expected = load_utterance_audio(utt, RATE)
        assert len(expected) == 2000
        assert np.max(np.abs(read[utt.utt_id].samples - expected)) <= 1 / 32768


def _epoch(out: Path, rank: int, epoch: int) -> list[str]:
    stream = ShardStream(out, rank=rank, world_size=2, seed=3)
    stream.set_epoch(epoch)
    loader = DataLoader(stream, batch_size=None, num_workers=2)
    return [item[0] for item in loader]


def test_two_ranks_two_workers_read_every_utterance_once_per_epoch(sharded) -> None:
    data, out = sharded
    ids = sorted(u.utt_id for u in read_data_dir(data).utterances)
    orders = {}
    for epoch in (0, 1):
        per_rank = [_epoch(out, rank, epoch) for rank in (0, 1)]
        for got in per_rank:
            assert len(got) == 12 and len(set(got)) == 12
        assert not set(per_rank[0]) & set(per_rank[1])
        assert sorted(per_rank[0] + per_rank[1]) == ids
        orders[epoch] = per_rank
    assert orders[0][0] != orders[1][0]  # another shard order in epoch 1
    stream = ShardStream(out, rank=0, world_size=2, seed=3)
    assert stream.epoch_order(0) != stream.epoch_order(1)
    assert sorted(stream.epoch_order(1)) == list(range(8))
    # Each (rank, worker) reads 2 of the 8 shards; this rank's utterances are known ahead.
    assert [len(stream.assigned(w, 2, epoch=0)) for w in (0, 1)] == [2, 2]
    assert stream.rank_utterances(0) == 12
    # The same epoch twice: the same stream (any number of workers gives the same set).
    assert _epoch(out, 0, 1) == orders[1][0]


def test_more_readers_than_shards(sharded, monkeypatch) -> None:
    _, out = sharded
    names = [str(out / f"shard-{i:06d}.tar") for i in range(3)]
    with pytest.raises(DataDirError, match="3 shard"):
        ShardStream(names, rank=0, world_size=4)
    # Rank 1 of 2 gets one of the 3 shards: with 2 workers, worker 1 has none and says so.
    stream = ShardStream(names, rank=1, world_size=2)
    assert len(_read_all(stream)) == 3
    for worker, expected in ((0, [{"url": names[1]}]), (1, [])):
        info = SimpleNamespace(id=worker, num_workers=2)
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda info=info: info)
        if expected:
            assert list(stream._split(iter([{"url": n} for n in names]))) == expected
        else:
            with pytest.warns(UserWarning, match="rank 1 worker 1: no shard to read"):
                assert list(stream._split(iter([{"url": n} for n in names]))) == []


def test_check_shards_fails_in_one_line_after_changes(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data", 6)
    out = tmp_path / "shards"
    write_shards(data, out, RATE, utts_per_shard=2)
    check_shards(out, data)
    text = (data / "text").read_text()
    (data / "text").write_text(text.replace("a b", "a a", 1))
    with pytest.raises(DataDirError) as err:
        check_shards(out, data)
    message = str(err.value)
    assert "\n" not in message and f"{data / 'text'}: changed" in message
    assert "asr data make-shards" in message
    (data / "text").write_text(text)
    check_shards(out, data)
    shard = out / "shard-000001.tar"
    content = shard.read_bytes()
    shard.write_bytes(content[:1000])
    with pytest.raises(DataDirError, match="truncated") as err:
        check_shards(out, data)
    assert "\n" not in str(err.value) and str(shard) in str(err.value)
    shard.unlink()
    with pytest.raises(DataDirError, match="shard missing") as err:
        check_shards(out, data)
    assert "\n" not in str(err.value) and str(shard) in str(err.value)
    (out / "shards.yaml").unlink()
    with pytest.raises(DataDirError, match="shards.yaml: not found"):
        check_shards(out, data)


def test_rewriting_removes_stale_shards(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data", 6)
    out = tmp_path / "shards"
    write_shards(data, out, RATE, utts_per_shard=1)
    write_shards(data, out, RATE, utts_per_shard=4)
    assert sorted(p.name for p in out.glob("*.tar")) == ["shard-000000.tar", "shard-000001.tar"]
    assert [s["utterances"] for s in read_manifest(out)["shards"]] == [4, 2]


def test_cli_make_and_check_shards(tmp_path: Path, capsys) -> None:
    data = make_data_dir(tmp_path / "data", 7)
    out = tmp_path / "shards"
    assert main(["data", "make-shards", str(data), str(out), "--sample-rate", "8000",
                 "--utts-per-shard", "3", "--seed", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{out}: 3 shards, 7 utterances, ") and "hours" in line
    assert yaml.safe_load((out / "shards.yaml").read_text())["seed"] == 1
    assert main(["data", "check-shards", str(out), str(data)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{out}: 3 shards, 7 utterances") and "up to date" in line
    (out / "shard-000002.tar").unlink()
    assert main(["data", "check-shards", str(out), str(data)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "shard-000002.tar: shard missing" in err
