"""subset, combine, copy, split (+ merge), perturb-speed and get-durations on data dirs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kaldi_format import kaldi_check

from asr.audio import speed_perturb
from asr.cli import main as asr_main
from asr.data.datadir import read_data_dir, write_data_dir
from asr.data.datafiles import DataFiles
from asr.data.durations import get_durations
from asr.data.ops import combine, copy_renamed, evenly_spaced, subset_utterances
from asr.data.perturb import perturb_speed
from asr.data.split import balanced_cuts, split_data_dir, split_utterances
from asr.data.tables import c_sort_key, read_kaldi_map
from asr.data.utterance import RecordingSegment, Utterance
from asr.data.validate import has_errors, validate_data_dir
from asr.data.wav_audio import load_utterance_audio
from asr.errors import DataDirError

RATE = 8000


def _wav(path: Path, seconds: float) -> str:
    t = np.arange(int(round(seconds * RATE))) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32), RATE, subtype="PCM_16")
    return str(path)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """3 speakers with 1, 2 and 3 utterances of 0.5..1.5 s, plus utt2dur and spk2gender."""
    utts = []
    for spk, n in (("ann", 1), ("bob", 2), ("cat", 3)):
        for i in range(n):
            utt = f"{spk}-{i}"
            utts.append(Utterance(utt, _wav(tmp_path / f"{utt}.wav", 0.5 + 0.25 * (i + n)),
                                  f"words of {utt}", spk))
    path = write_data_dir(tmp_path / "corpus", utts).path
    (path / "spk2gender").write_text("ann f\nbob m\ncat f\n")
    get_durations(path)
    return path


def _utts(path: Path) -> list[str]:
    return list(read_kaldi_map(path / "utt2spk"))


def _valid(path: Path, tmp_path: Path) -> None:
    problems = validate_data_dir(path)
    assert not has_errors(problems), [str(p) for p in problems]
    assert kaldi_check(path, tmp_path) == []


def test_get_durations(corpus: Path) -> None:
    durations = {k: float(v) for k, v in read_kaldi_map(corpus / "utt2dur").items()}
    assert durations == {"ann-0": 0.75, "bob-0": 1.0, "bob-1": 1.25, "cat-0": 1.25,
                         "cat-1": 1.5, "cat-2": 1.75}


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("first", 2, ["ann-0", "bob-0"]),
        ("last", 2, ["cat-1", "cat-2"]),
        ("shortest", 3, ["ann-0", "bob-0", "bob-1"]),
        ("evenly", 3, ["ann-0", "bob-1", "cat-1"]),
        ("per_spk", 1, ["ann-0", "bob-0", "cat-0"]),
        ("speakers", 2, ["ann-0", "bob-0", "bob-1"]),
    ],
)
def test_subset_criteria(corpus: Path, tmp_path: Path, option, value, expected) -> None:
    data = DataFiles.load(corpus)
    utts = subset_utterances(data, **{option: value})
    assert utts == expected
    out = data.select(utts).write(tmp_path / "sub")
    assert _utts(out) == expected
    assert set(read_kaldi_map(out / "spk2gender")) == {u.split("-")[0] for u in expected}
    _valid(out, tmp_path)


def test_subset_lists_and_errors(corpus: Path, tmp_path: Path) -> None:
    data = DataFiles.load(corpus)
    assert subset_utterances(data, utt_list=["cat-1", "ann-0", "zzz"]) == ["ann-0", "cat-1"]
    assert subset_utterances(data, spk_list=["bob"]) == ["bob-0", "bob-1"]
    with pytest.raises(DataDirError, match="choose exactly one subset criterion"):
        subset_utterances(data, first=1, last=1)
    assert evenly_spaced(list("abcdef"), 10) == list("abcdef")
    (tmp_path / "list").write_text("bob-1 extra fields\n\ncat-2\n")
    assert asr_main.main(["data", "subset", str(corpus), str(tmp_path / "l"),
                          "--utt-list", str(tmp_path / "list")]) == 0
    assert _utts(tmp_path / "l") == ["bob-1", "cat-2"]
    assert asr_main.main(["data", "subset", str(corpus), str(tmp_path / "e"),
                          "--spk-list", str(tmp_path / "nobody")]) == 1


def test_output_replaces_a_data_dir_as_a_whole(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    DataFiles.load(corpus).write(out)
    (out / "split2").mkdir()  # stale splits of the old content must not survive
    data = DataFiles.load(corpus)
    data.select(["ann-0"]).write(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["spk2gender", "spk2utt", "text", "utt2dur", "utt2spk", "wav.scp"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("mine")
    with pytest.raises(DataDirError, match="is not a data directory"):
        data.write(tmp_path / "precious")
    with pytest.raises(DataDirError, match="must differ from the input"):
        data.write(corpus)


def test_combine(corpus: Path, tmp_path: Path) -> None:
    data = DataFiles.load(corpus)
    a = data.select(["ann-0", "cat-2"]).write(tmp_path / "a")
    b = data.select(["bob-0", "bob-1", "cat-0"]).write(tmp_path / "b")
    (b / "utt2uniq").write_text("bob-0 bob-0\nbob-1 bob-0\ncat-0 cat-0\n")
    (a / "utt2dur").unlink()
    combined = combine([DataFiles.load(a), DataFiles.load(b)])
    out = combined.write(tmp_path / "ab")
    assert _utts(out) == ["ann-0", "bob-0", "bob-1", "cat-0", "cat-2"]
    assert read_kaldi_map(out / "spk2utt")["cat"] == "cat-0 cat-2"
    assert read_kaldi_map(out / "utt2uniq") == {"ann-0": "ann-0", "bob-0": "bob-0",
                                                "bob-1": "bob-0", "cat-0": "cat-0",
                                                "cat-2": "cat-2"}
    assert not (out / "utt2dur").exists()
    assert combined.notes == ["utt2dur: not in every source directory, left out of the result"]
    _valid(out, tmp_path)
    with pytest.raises(DataDirError, match="utterance 'bob-0' is also in"):
        combine([DataFiles.load(b), DataFiles.load(b)])


def test_combine_segmented_with_whole_recordings(corpus: Path, tmp_path: Path) -> None:
    rec = _wav(tmp_path / "long.wav", 3.0)
    seg = write_data_dir(tmp_path / "seg", [
        Utterance("dan-r-1", rec, "x", "dan", RecordingSegment("dan-r", 0.0, 1.5)),
        Utterance("dan-r-2", rec, "y", "dan", RecordingSegment("dan-r", 1.5, 3.0)),
    ]).path
    (corpus / "utt2dur").unlink()  # durations then come from the audio headers
    out = combine([DataFiles.load(corpus), DataFiles.load(seg)]).write(tmp_path / "mixed")
    segments = read_kaldi_map(out / "segments")
    assert segments["ann-0"] == "ann-0 0 0.75" and segments["dan-r-2"] == "dan-r 1.5 3"
    assert len(read_kaldi_map(out / "wav.scp")) == 7  # 6 whole recordings + 1 long one
    _valid(out, tmp_path)
    loaded = {u.utt_id: load_utterance_audio(u) for u in read_data_dir(out).utterances}
    assert len(loaded["ann-0"]) == int(0.75 * RATE) and len(loaded["dan-r-1"]) == int(1.5 * RATE)


def test_copy_with_prefixes(corpus: Path, tmp_path: Path) -> None:
    renamed = copy_renamed(DataFiles.load(corpus), utt_prefix="v1-", spk_prefix="v1-")
    out = renamed.write(tmp_path / "copy")
    assert _utts(out)[0] == "v1-ann-0"
    assert read_kaldi_map(out / "utt2spk")["v1-bob-1"] == "v1-bob"
    assert read_kaldi_map(out / "spk2gender") == {"v1-ann": "f", "v1-bob": "m", "v1-cat": "f"}
    _valid(out, tmp_path)
    assert asr_main.main(["data", "copy", "--utt-suffix=-x", "--spk-suffix=-x",
                          str(corpus), str(tmp_path / "suffixed")]) == 0
    assert _utts(tmp_path / "suffixed")[0] == "ann-0-x"


# ---- split and merge


def test_balanced_cuts() -> None:
    assert balanced_cuts([1, 2, 3], 2) == [0, 2, 3]
    assert balanced_cuts([5, 1, 1, 1, 1, 1], 2) == [0, 1, 6]
    assert balanced_cuts([1] * 7, 3) == [0, 2, 5, 7]
    with pytest.raises(ValueError):
        balanced_cuts([1, 1], 3)


def test_split_by_speaker_and_per_utterance(corpus: Path, tmp_path: Path) -> None:
    parts = split_data_dir(corpus, 2)
    assert parts == [corpus / "split2" / "1", corpus / "split2" / "2"]
    assert [_utts(p) for p in parts] == [["ann-0", "bob-0", "bob-1"],
                                         ["cat-0", "cat-1", "cat-2"]]
    for part in parts:
        _valid(part, tmp_path)
        assert (part / "spk2gender").is_file() and (part / "utt2dur").is_file()
    per_utt = split_data_dir(corpus, 4, per_utt=True)
    assert [len(_utts(p)) for p in per_utt] == [1, 2, 1, 2]
    with pytest.raises(DataDirError, match="cannot split 3 speaker"):
        split_data_dir(corpus, 4)
    with pytest.raises(DataDirError, match="cannot split 6 utterance"):
        split_data_dir(corpus, 7, per_utt=True)


@st.composite
def speaker_dirs(draw) -> dict[str, str]:
    counts = draw(st.lists(st.integers(1, 6), min_size=1, max_size=8))
    return {f"s{i:02d}-{j:03d}": f"s{i:02d}" for i, n in enumerate(counts) for j in range(n)}


@settings(max_examples=60, deadline=None)
@given(speaker_dirs(), st.integers(1, 8), st.booleans())
def test_split_keeps_every_utterance_exactly_once(utt2spk, parts, per_utt) -> None:
    data = DataFiles({"utt2spk": utt2spk, "text": {u: "x" for u in utt2spk}})
    speakers = len(set(utt2spk.values()))
    if parts > (len(utt2spk) if per_utt else speakers):
        with pytest.raises(DataDirError):
            split_utterances(data, parts, per_utt)
        return
    groups = split_utterances(data, parts, per_utt)
    assert len(groups) == parts and all(groups)
    merged = [u for g in groups for u in g]
    assert merged == sorted(utt2spk, key=c_sort_key)  # in order, each exactly once
    if not per_utt:
        owner = {utt2spk[u]: i for i, g in enumerate(groups) for u in g}
        assert all(owner[utt2spk[u]] == i for i, g in enumerate(groups) for u in g)
    else:
        sizes = [len(g) for g in groups]
        assert max(sizes) - min(sizes) <= 1


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(speaker_dirs(), st.integers(1, 4))
def test_split_then_merge_with_sort_restores_the_text(tmp_path: Path, utt2spk, parts) -> None:
    """What tools/decode.sh does with the per-part outputs: `sort -m` of the parts."""
    target = tmp_path / "d"
    shutil.rmtree(target, ignore_errors=True)
    write_data_dir(target, [Utterance(u, f"/{u}.wav", f"t {u}", s) for u, s in utt2spk.items()])
    parts = split_data_dir(target, min(parts, len(utt2spk)), per_utt=True)
    merged = subprocess.run(["sort", "-m", "-k1,1", *(str(p / "text") for p in parts)],
                            capture_output=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
                            check=True).stdout
    assert merged == (target / "text").read_bytes()


# ---- speed perturbation


def test_speed_perturb_signal() -> None:
    t = np.arange(RATE) / RATE
    tone = np.sin(2 * np.pi * 400 * t).astype(np.float32)
    for factor in (0.9, 1.1):
        out = speed_perturb(tone, factor)
        assert out.dtype == np.float32
        assert abs(len(out) - len(tone) / factor) <= 1
        peak = np.argmax(np.abs(np.fft.rfft(out))) * RATE / len(out)
        assert peak == pytest.approx(400 * factor, abs=2)  # pitch moves with the speed
    assert speed_perturb(tone, 1.0) is not None and np.array_equal(speed_perturb(tone, 1.0), tone)
    with pytest.raises(ValueError):
        speed_perturb(tone, 0)


def test_perturb_speed_writes_kaldi_lines(corpus: Path, tmp_path: Path) -> None:
    (corpus / "feats.scp").write_text("".join(f"{u} f.ark:{i}\n" for i, u in
                                              enumerate(_utts(corpus))))
    perturbed = perturb_speed(DataFiles.load(corpus), "0.9")
    out = perturbed.write(tmp_path / "sp")
    wav = read_kaldi_map(out / "wav.scp")
    assert wav["sp0.9-bob-1"] == f"sox -t wav {corpus.parent / 'bob-1.wav'} -t wav - speed 0.9 |"
    assert read_kaldi_map(out / "utt2spk")["sp0.9-bob-1"] == "sp0.9-bob"
    assert read_kaldi_map(out / "utt2uniq")["sp0.9-bob-1"] == "bob-1"
    assert read_kaldi_map(out / "text")["sp0.9-bob-1"] == "words of bob-1"
    assert read_kaldi_map(out / "spk2gender")["sp0.9-bob"] == "m"
    assert float(read_kaldi_map(out / "utt2dur")["sp0.9-bob-1"]) == pytest.approx(1.25 / 0.9,
                                                                                 abs=1e-6)
    assert not (out / "feats.scp").exists()  # features no longer match the audio
    _valid(out, tmp_path)
    utt = next(u for u in read_data_dir(out).utterances if u.utt_id == "sp0.9-bob-1")
    original, _ = sf.read(corpus.parent / "bob-1.wav", dtype="float32")
    assert np.array_equal(load_utterance_audio(utt), speed_perturb(original, 0.9))


def test_perturb_speed_segments(tmp_path: Path) -> None:
    rec = _wav(tmp_path / "long.wav", 3.0)
    seg = write_data_dir(tmp_path / "seg", [
        Utterance("dan-r-1", rec, "x", "dan", RecordingSegment("dan-r", 0.0, 1.5)),
        Utterance("dan-r-2", rec, "y", "dan", RecordingSegment("dan-r", 1.5, 3.0)),
    ]).path
    assert asr_main.main(["data", "perturb-speed", "1.1", str(seg), str(tmp_path / "sp")]) == 0
    out = tmp_path / "sp"
    assert read_kaldi_map(out / "segments") == {"sp1.1-dan-r-1": "sp1.1-dan-r 0.00 1.36",
                                                "sp1.1-dan-r-2": "sp1.1-dan-r 1.36 2.73"}
    assert read_kaldi_map(out / "wav.scp") == {
        "sp1.1-dan-r": f"sox -t wav {rec} -t wav - speed 1.1 |"}
    assert float(read_kaldi_map(out / "reco2dur")["sp1.1-dan-r"]) == pytest.approx(3 / 1.1,
                                                                                 abs=1e-6)
    _valid(out, tmp_path)
    second = next(u for u in read_data_dir(out).utterances if u.utt_id.endswith("-2"))
    # Kaldi's 2-decimal end (2.73) lies just past the 2.727 s recording: clipped, as Kaldi does.
    assert abs(len(load_utterance_audio(second)) - (3.0 * RATE / 1.1 - 1.36 * RATE)) <= 1
    # Kaldi's 3-way recipe: the original plus two perturbed copies, combined.
    assert asr_main.main(["data", "perturb-speed", "0.9", str(seg), str(tmp_path / "sp9")]) == 0
    assert asr_main.main(["data", "combine", str(tmp_path / "all"), str(seg),
                          str(tmp_path / "sp9"), str(out)]) == 0
    assert len(_utts(tmp_path / "all")) == 6
    _valid(tmp_path / "all", tmp_path)


def test_perturb_errors(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="speed factor 'fast' is not a number"):
        perturb_speed(DataFiles.load(corpus), "fast")
    with pytest.raises(DataDirError, match="must be a positive number"):
        perturb_speed(DataFiles.load(corpus), "-1")
    (corpus / "utt2spk").unlink()
    with pytest.raises(DataDirError, match="no utt2spk; run `asr data fix"):
        DataFiles.load(corpus)
