"""The lazy data path: examples from metadata (utt2dur, computed when absent), audio read per
batch in DataLoader workers, the same weights as the in-RAM path (train.preload) with 0, 1 or 2
workers; unreadable audio found by a worker is skipped, listed and limited as at start-up; a
worker that dies stops the run with one line; global CMVN from a bounded sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from faults_utils import TINY, make_data_dir, train_args

from asr.cli import main as asr_main
from asr.config import load_config
from asr.data import read_data_dir
from asr.data.dataset import SkipReport
from asr.errors import DataDirError
from asr.text import Tokenizer
from asr.train import Trainer
from asr.train.data import load_waveforms
from asr.train.lazy import LazyExample, load_lazy, utterance_seconds
from asr.train.reader import BatchKey, BatchReader, read_batches

ON_THE_FLY = [*TINY, "train.features_on_the_fly=true", "features.cmvn=global", "train.epochs=1"]


def _config(*overrides: str):
    return load_config(None, [*ON_THE_FLY, *overrides])


def _tokenizer() -> Tokenizer:
    return Tokenizer.build(["a b c"], "char")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_data_dir(tmp_path_factory.mktemp("loader") / "train", 12)


def _copy(corpus: Path, where: Path) -> Path:
    """A copy of the corpus whose wav.scp points at its own copies of the files."""
    shutil.copytree(corpus, where)
    (where / "wav.scp").write_text((corpus / "wav.scp").read_text().replace(str(corpus), str(where)))
    return where


def test_lazy_examples_hold_no_audio_and_match_the_decoded_ones(corpus: Path, tmp_path: Path, caplog) -> None:
    data = read_data_dir(_copy(corpus, tmp_path / "data"))
    config = _config()
    with caplog.at_level("INFO"):
        lazy, report = load_lazy(data, config.features, _tokenizer(), subsampling=2)
    assert "no utt2dur; computed it from the audio headers and wrote" in caplog.text
    assert (data.path / "utt2dur").is_file() and report.total == 0
    waves, _ = load_waveforms(data, config.features, _tokenizer(), subsampling=2)
    assert [e.utt_id for e in lazy] == [w.utt_id for w in waves]
    assert all(isinstance(e, LazyExample) and not hasattr(e, "samples") for e in lazy)
    # The frame count from the duration is the one of the decoded samples.
    assert [e.num_frames for e in lazy] == [w.num_frames for w in waves]
    assert [e.duration for e in lazy] == pytest.approx([w.duration for w in waves], abs=1e-6)
    # Read back: the same durations from the utt2dur written above, nothing measured again.
    caplog.clear()
    with caplog.at_level("INFO"):
        again, _ = load_lazy(data, config.features, _tokenizer(), subsampling=2)
    assert "no utt2dur" not in caplog.text and [e.num_frames for e in again] == [e.num_frames for e in lazy]
    batch = BatchReader(lazy, config.features.sample_rate).read(lazy[:3]).batch
    reference = BatchReader(waves, config.features.sample_rate).read(waves[:3]).batch
    assert torch.equal(batch.waves, reference.waves) and torch.equal(batch.wave_lengths, reference.wave_lengths)


def test_a_header_that_cannot_be_read_is_counted_at_start_up(corpus: Path, tmp_path: Path) -> None:
    data_path = _copy(corpus, tmp_path / "data")
    broken = sorted((data_path / "wav").glob("*.wav"))[4]
    broken.write_bytes(b"RIFF not really")
    data = read_data_dir(data_path)
    report = SkipReport()
    seconds = utterance_seconds(data, report, max_bad_utts=1)
    assert broken.stem not in seconds and len(seconds) == 11
    assert [u for u, _ in report.unreadable] == [broken.stem]
    assert not (data_path / "utt2dur").exists()  # not written with an utterance missing
    with pytest.raises(DataDirError, match=f"1 utterance.*first '{broken.stem}'.*--max-bad-utts 0"):
        utterance_seconds(data, SkipReport(), max_bad_utts=0)


def _fit(corpus: Path, exp: Path, lazy: bool, *overrides: str) -> dict[str, torch.Tensor]:
    config = _config("augment.speed_perturb=true", *overrides)
    data = read_data_dir(corpus)
    if lazy:
        examples, _ = load_lazy(data, config.features, _tokenizer(), subsampling=2)
    else:
        examples, _ = load_waveforms(data, config.features, _tokenizer(), subsampling=2)
    trainer = Trainer(config, exp, _tokenizer(), examples, examples[:3], progress=False)
    trainer.fit(resume=False)
    return trainer.model.state_dict()


def test_lazy_path_with_workers_trains_the_same_weights_as_the_in_ram_path(corpus: Path, tmp_path: Path) -> None:
    """Same batches, same perturbations (seeded per batch), same updates: bit for bit."""
    data = _copy(corpus, tmp_path / "data")
    reference = _fit(data, tmp_path / "ram", lazy=False)
    for workers in (0, 2):
        weights = _fit(data, tmp_path / f"lazy{workers}", True, f"train.num_workers={workers}")
        for key, value in reference.items():
            assert torch.equal(weights[key], value), (workers, key)


def test_read_batches_in_workers_keep_the_order_and_report_unreadable(corpus: Path, tmp_path: Path) -> None:
    data_path = _copy(corpus, tmp_path / "data")
    config = _config()
    lazy, _ = load_lazy(read_data_dir(data_path), config.features, _tokenizer(), subsampling=2)
    # Broken after start-up (utt2dur written): the worker finds it.
    Path(lazy[5].utterance.wav).write_bytes(b"\0" * 100)
    reader = BatchReader(lazy, config.features.sample_rate)
    keys = [BatchKey(0, i, (2 * i, 2 * i + 1)) for i in range(6)]
    read = list(read_batches(reader, keys, num_workers=2))
    assert [r.key.index for r in read] == list(range(6))
    assert [r.batch.utt_ids for r in read][2] == [lazy[4].utt_id]
    assert [u for u, _ in read[2].unreadable] == [lazy[5].utt_id]
    assert all(not r.unreadable for i, r in enumerate(read) if i != 2)


def test_a_file_broken_after_start_up_is_skipped_listed_and_limited(corpus: Path, tmp_path: Path, capsys) -> None:
    data_path = _copy(corpus, tmp_path / "data")
    read_data_dir(data_path)
    from asr.data.durations import get_durations

    get_durations(data_path)  # utt2dur first: the start-up screen sees nothing wrong
    broken = sorted((data_path / "wav").glob("*.wav"))[7]
    broken.write_bytes(b"junk" * 20)
    extra = ("train.features_on_the_fly=true", "train.num_workers=2", "features.cmvn=utterance", "train.epochs=1")
    exp = tmp_path / "exp"
    assert asr_main.main([*train_args(data_path, exp, None, *extra), "--max-bad-utts", "1"]) == 0
    assert (exp / "bad_utts").read_text().startswith(f"{broken.stem} ")
    assert f"utterance {broken.stem}: " in (exp / "train.log").read_text()
    capsys.readouterr()
    code = asr_main.main(train_args(data_path, tmp_path / "exp0", None, *extra))
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("asr train: error: ")]
    assert code != 0 and len(errors) == 1, errors
    assert f"1 utterance(s) with unreadable audio (first '{broken.stem}'" in errors[0]
    assert "more than --max-bad-utts 0" in errors[0]


def test_a_worker_that_dies_stops_the_run_with_one_line(corpus: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """A wav.scp command that kills the worker reading it (SIGKILL, as the OOM killer does) in
    the second epoch: the run stops with one line and the first epoch's checkpoint intact."""
    data_path = _copy(corpus, tmp_path / "data")
    from asr.data.durations import get_durations

    get_durations(data_path)
    marker = tmp_path / "first-epoch-done"
    lines = (data_path / "wav.scp").read_text().splitlines()
    utt, wav = lines[3].split(maxsplit=1)
    lines[3] = f"{utt} if [ -f {marker} ]; then kill -9 $PPID; fi; touch {marker}; cat {wav} |"
    (data_path / "wav.scp").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("ASR_ALLOW_PIPES", "1")
    extra = ("train.features_on_the_fly=true", "train.num_workers=1", "features.cmvn=utterance", "train.epochs=2")
    exp = tmp_path / "exp"
    code = asr_main.main(train_args(data_path, exp, None, *extra))
    output = capsys.readouterr().err
    err = [line for line in output.splitlines() if line.startswith("asr train: error: ")]
    assert code != 0 and len(err) == 1 and "Traceback" not in output, output[-3000:]
    assert "DataLoader worker" in err[0] and "its last checkpoint is intact" in err[0]
    assert (exp / "checkpoints" / "epoch-1.pt").is_file() and not (exp / "checkpoints" / "epoch-2.pt").exists()


def test_global_cmvn_from_a_bounded_sample(corpus: Path, tmp_path: Path, caplog) -> None:
    data = read_data_dir(_copy(corpus, tmp_path / "data"))
    config = _config("train.cmvn_max_utts=5")
    lazy, _ = load_lazy(data, config.features, _tokenizer(), subsampling=2)
    trainer = Trainer(config, tmp_path / "a", _tokenizer(), lazy, [], progress=False)
    sample = trainer.data.cmvn_sample()
    assert len(sample) == 5 and sample == sorted(set(sample))
    assert Trainer(config, tmp_path / "b", _tokenizer(), lazy, [], progress=False).data.cmvn_sample() == sample
    with caplog.at_level("INFO"):
        trainer._compute_cmvn()
    assert "of 5 of 12 utterances" in caplog.text
    full = Trainer(_config("train.cmvn_max_utts=0"), tmp_path / "c", _tokenizer(), lazy, [], progress=False)
    assert full.data.cmvn_sample() == list(range(12))
    full._compute_cmvn()
    assert not torch.equal(full.model.normalizer.mean, trainer.model.normalizer.mean)
