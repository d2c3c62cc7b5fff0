"""asr.corpora: yes/no and FSDD data preparation on the real shared recordings."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from numpy.lib.stride_tricks import sliding_window_view

from asr.audio import audio_duration
from asr.corpora import fsdd, yesno
from asr.data.datadir import read_data_dir
from asr.data.tables import read_kaldi_map
from asr.errors import AsrError

KALDI_FILES = ("wav.scp", "text", "utt2spk", "spk2utt")


def assert_sorted_data_dir(path: Path) -> None:
    for name in KALDI_FILES:
        keys = [line.split(" ", 1)[0] for line in (path / name).read_text("utf-8").splitlines()]
        assert keys, f"{path / name} is empty"
        assert keys == sorted(keys, key=lambda k: k.encode("utf-8")), f"{path / name} not C-sorted"


# --------------------------------------------------------------------------------------- yesno


def test_yesno_prepare_real_corpus(yesno_waves: Path, tmp_path: Path) -> None:
    dirs = yesno.prepare(yesno_waves.parent, tmp_path / "data")
    assert set(dirs) == {"train", "test"}
    train, test = read_data_dir(dirs["train"]), read_data_dir(dirs["test"])
    assert (len(train), len(test)) == (31, 29)
    for name in ("train", "test"):
        assert_sorted_data_dir(dirs[name])
    all_names = sorted((p.name for p in yesno_waves.glob("*.wav")), key=str.encode)
    # Kaldi's split: the first 29 sorted recordings are the test set.
    assert [Path(u.wav).name for u in test.utterances] == all_names[:29]
    assert [Path(u.wav).name for u in train.utterances] == all_names[29:]
    for utt in train.utterances + test.utterances:
        words = utt.text.split()
        assert len(words) == 8 and set(words) <= {"YES", "NO"}
        labels = Path(utt.wav).stem.split("_")
        assert words == ["YES" if label == "1" else "NO" for label in labels]
        assert utt.speaker == "global" and utt.utt_id == f"global-{Path(utt.wav).stem}"
        assert Path(utt.wav).is_file()


def test_yesno_errors(tmp_path: Path) -> None:
    with pytest.raises(AsrError, match="yesno corpus directory not found"):
        yesno.scan(tmp_path / "nope")
    (tmp_path / "waves_yesno").mkdir()
    (tmp_path / "waves_yesno" / "README").write_text("x")
    (tmp_path / "waves_yesno" / "0_1.wav").write_bytes(b"")  # wrong name: ignored
    with pytest.raises(AsrError, match="no yes/no recordings"):
        yesno.scan(tmp_path)


def test_yesno_main(yesno_waves: Path, tmp_path: Path, capsys) -> None:
    assert yesno.main(["--corpus-dir", str(yesno_waves), "--out", str(tmp_path / "d")]) == 0
    assert "train:" in capsys.readouterr().out
    assert yesno.main(["--corpus-dir", str(tmp_path / "none"), "--out", str(tmp_path / "e")]) == 1


# ---------------------------------------------------------------------------------------- FSDD

SPEAKERS = ("george", "jackson")
TAKES = range(15)
SUBSET_ARGS = {"num_train": 20, "num_dev": 5, "num_test": 5}
SPLIT_TAKES = {"test": range(0, 5), "dev": range(5, 10), "train": range(10, 50)}
PAUSE_SAMPLES = (400, 2400)  # 50 ms and 300 ms at 8 kHz


@pytest.fixture(scope="module")
def fsdd_subset(fsdd_recordings: Path, tmp_path_factory) -> Path:
    """2 speakers x 10 digits x takes 0-14 of the real recordings (300 files)."""
    root = tmp_path_factory.mktemp("fsdd") / "corpus"
    (root / "recordings").mkdir(parents=True)
    for speaker in SPEAKERS:
        for digit in range(10):
            for take in TAKES:
                name = f"{digit}_{speaker}_{take}.wav"
                if not (fsdd_recordings / name).is_file():
                    pytest.skip(f"{name} missing from the shared FSDD copy")
                shutil.copy(fsdd_recordings / name, root / "recordings" / name)
    return root


@pytest.fixture(scope="module")
def fsdd_prepared(fsdd_subset: Path, tmp_path_factory) -> dict[str, Path]:
    return fsdd.prepare(fsdd_subset, tmp_path_factory.mktemp("fsdd-out") / "data", **SUBSET_ARGS)


ISO_RE = re.compile(r"^(?P<spk>[a-z]+)-iso-(?P<digit>\d)-(?P<take>\d\d)$")
CON_RE = re.compile(r"^(?P<spk>[a-z]+)-con-(?P<split>train|dev|test)-\d{5}$")


def test_fsdd_split_sizes_and_isolated_takes(fsdd_prepared: dict[str, Path]) -> None:
    assert set(fsdd_prepared) == {"train", "dev", "test", "test_isolated"}
    data = {name: read_data_dir(path) for name, path in fsdd_prepared.items()}
    for path in fsdd_prepared.values():
        assert_sorted_data_dir(path)
    # train: 20 connected + the isolated takes 10-14 of 2 speakers x 10 digits.
    iso_train = [u for u in data["train"].utterances if "-iso-" in u.utt_id]
    con_train = [u for u in data["train"].utterances if "-con-" in u.utt_id]
    assert (len(con_train), len(iso_train)) == (20, 2 * 10 * 5)
    assert len(data["dev"]) == 5 and len(data["test"]) == 5
    assert all("-con-" in u.utt_id for u in data["dev"].utterances + data["test"].utterances)
    assert len(data["test_isolated"]) == 2 * 10 * 5

    for split, utts, takes in [
        ("train", iso_train, range(10, 50)),
        ("test_isolated", data["test_isolated"].utterances, range(0, 5)),
    ]:
        for utt in utts:
            match = ISO_RE.match(utt.utt_id)
            assert match, utt.utt_id
            take, digit = int(match["take"]), int(match["digit"])
            assert take in takes, f"{split}: {utt.utt_id} uses take {take}"
            assert Path(utt.wav).name == f"{digit}_{match['spk']}_{take}.wav"
            assert utt.text == fsdd.WORDS[digit] and utt.speaker == match["spk"]


def _load_int16(path: str | Path) -> np.ndarray:
    samples, rate = sf.read(path, dtype="int16")
    assert rate == fsdd.SAMPLE_RATE and samples.ndim == 1
    return samples.astype(np.int32)


def _reconstruct(signal: np.ndarray, speaker: str, digits: list[int], sources: Path):
    """Find, left to right, which take of each digit the connected signal contains and where.

    Returns the takes and the pauses (in samples) before, between and after the digits. Every
    pause must lie in 50-300 ms and every digit must match one recording sample for sample.
    """
    takes, pauses, pos = [], [], 0
    lo, hi = PAUSE_SAMPLES
    for digit in digits:
        matches = []
        window = signal[pos + lo : pos + hi + 32]
        starts = sliding_window_view(window, 32) if len(window) >= 32 else np.empty((0, 32))
        for take in TAKES:
            rec = _load_int16(sources / f"{digit}_{speaker}_{take}.wav")
            for k in np.flatnonzero((starts == rec[:32]).all(axis=1)):
                offset = pos + lo + int(k)
                if np.array_equal(signal[offset : offset + len(rec)], rec):
                    matches.append((offset, take, len(rec)))
        assert len(matches) == 1, f"digit {digit}: expected exactly one placement, found {matches}"
        offset, take, length = matches[0]
        takes.append(take)
        pauses.append(offset - pos)
        pos = offset + length
    pauses.append(len(signal) - pos)
    return takes, pauses


def test_fsdd_connected_utterances(fsdd_prepared: dict[str, Path], fsdd_subset: Path) -> None:
    """2-7 words of one speaker; duration = digits + pauses of 50-300 ms each (both ends too);
    each split uses only its own takes (test 0-4, dev 5-9, train 10-49)."""
    sources = fsdd_subset / "recordings"
    seen_lengths = set()
    for split in ("train", "dev", "test"):
        for utt in read_data_dir(fsdd_prepared[split]).utterances:
            match = CON_RE.match(utt.utt_id)
            if not match:
                continue
            assert match["split"] == split and utt.speaker == match["spk"] in SPEAKERS
            words = utt.text.split()
            assert 2 <= len(words) <= 7
            seen_lengths.add(len(words))
            digits = [fsdd.WORDS.index(w) for w in words]
            signal = _load_int16(utt.wav)
            takes, pauses = _reconstruct(signal, utt.speaker, digits, sources)
            assert len(pauses) == len(words) + 1
            assert all(PAUSE_SAMPLES[0] <= p <= PAUSE_SAMPLES[1] for p in pauses), pauses
            assert all(t in SPLIT_TAKES[split] for t in takes), f"{utt.utt_id}: takes {takes}"
            parts = sum(
                len(_load_int16(sources / f"{d}_{utt.speaker}_{t}.wav"))
                for d, t in zip(digits, takes, strict=True)
            )
            assert len(signal) == parts + sum(pauses)
            assert audio_duration(utt.wav) == pytest.approx(
                (parts + sum(pauses)) / fsdd.SAMPLE_RATE
            )
            # The pauses are a faint noise floor, not digital silence.
            assert np.any(signal[: pauses[0]] != 0) and np.max(np.abs(signal[: pauses[0]])) < 100
    assert len(seen_lengths) >= 3  # the lengths really vary


def test_fsdd_same_seed_identical_other_seed_different(
    fsdd_subset: Path, fsdd_prepared, tmp_path: Path
) -> None:
    again = fsdd.prepare(fsdd_subset, tmp_path / "again", **SUBSET_ARGS)
    for name in fsdd_prepared:
        for file in ("text", "utt2spk", "spk2utt"):
            assert (again[name] / file).read_bytes() == (fsdd_prepared[name] / file).read_bytes()
        first = read_kaldi_map(fsdd_prepared[name] / "wav.scp")
        second = read_kaldi_map(again[name] / "wav.scp")
        assert list(first) == list(second)
        for utt_id in first:
            assert Path(first[utt_id]).read_bytes() == Path(second[utt_id]).read_bytes()
    other = fsdd.prepare(fsdd_subset, tmp_path / "other", seed=99, **SUBSET_ARGS)
    assert (other["train"] / "text").read_bytes() != (fsdd_prepared["train"] / "text").read_bytes()


def test_fsdd_scan_errors(tmp_path: Path) -> None:
    with pytest.raises(AsrError, match="FSDD corpus directory not found"):
        fsdd.scan(tmp_path / "missing")
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "notes.wav").write_bytes(b"")
    with pytest.raises(AsrError, match="no FSDD recordings"):
        fsdd.scan(tmp_path)


def test_fsdd_scan_parses_names(fsdd_subset: Path) -> None:
    recordings = fsdd.scan(fsdd_subset)
    assert len(recordings) == 300
    first = recordings[0]
    assert (first.digit, first.speaker, first.take) == (0, "george", 0)
    assert first.path.is_absolute()
    # The corpus digest depends on names and content.
    assert fsdd.recordings_digest(recordings) == fsdd.recordings_digest(list(reversed(recordings)))
    assert fsdd.recordings_digest(recordings) != fsdd.recordings_digest(recordings[1:])


def _tar_corpus(recordings_dir: Path, archive: Path, names: list[str] | None = None) -> str:
    """Pack recordings as the dataset's GitHub archive lays them out; return its SHA-256."""
    import hashlib
    import tarfile

    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for path in sorted(recordings_dir.glob("*.wav")):
            if names is None or path.name in names:
                tar.add(path, arcname=f"free-spoken-digit-dataset-{fsdd.VERSION[1:]}/recordings/{path.name}")
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def test_fsdd_fetch_from_file_url_verifies_the_real_digest(fsdd_recordings: Path, tmp_path: Path) -> None:
    archive = tmp_path / "mirror" / "fsdd.tar.gz"
    archive.parent.mkdir()
    archive_sha = _tar_corpus(fsdd_recordings, archive)
    root = fsdd.fetch(tmp_path / "corpus", archive.resolve().as_uri(), archive_sha256=archive_sha)
    assert (root / "recordings").is_dir()
    assert len(fsdd.scan(root)) == 3000
    assert fsdd.recordings_digest(fsdd.scan(root)) == fsdd.RECORDINGS_SHA256
    # The recipe's entry point takes the same route and then prepares the data dirs.
    assert fsdd.main(["--corpus-dir", str(tmp_path / "corpus2"), "--out", str(tmp_path / "data"),
                      "--download", "--url", archive.resolve().as_uri(),
                      "--num-train", "20", "--num-dev", "5", "--num-test", "5"]) == 0
    assert len((tmp_path / "data" / "test" / "text").read_text().splitlines()) == 5


def test_fsdd_fetch_rejects_a_wrong_corpus(fsdd_recordings: Path, tmp_path: Path, capsys) -> None:
    archive = tmp_path / "partial.tar.gz"
    _tar_corpus(fsdd_recordings, archive, names=["0_george_0.wav", "1_george_0.wav"])
    with pytest.raises(AsrError, match="recordings digest .* != expected"):
        fsdd.fetch(tmp_path / "corpus", archive.resolve().as_uri())
    assert list((tmp_path / "corpus").iterdir()) == []  # unpacked tree and archive deleted
    assert archive.exists()  # the source is not ours to delete
    code = fsdd.main(["--corpus-dir", str(tmp_path / "c2"), "--out", str(tmp_path / "d"),
                      "--download", "--url", archive.resolve().as_uri()])
    assert code == 1
    assert "recordings digest" in capsys.readouterr().err
