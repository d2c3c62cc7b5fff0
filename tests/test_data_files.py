"""asr.data.files and asr.data.wavscp: every Kaldi file type written, read back, equal."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr.data.datadir import read_data_dir, write_data_dir
from asr.data.files import FORMATS, read_file, spk2utt_to_utt2spk, utt2spk_to_spk2utt, write_file
from asr.data.tables import c_sort_key, format_float
from asr.data.utterance import RecordingSegment, Utterance
from asr.data.wavscp import (
    WavArk,
    WavPath,
    WavPipe,
    WavSpeed,
    format_wav_entry,
    needs_shell,
    parse_wav_entry,
)
from asr.errors import DataDirError

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

ids = st.text(alphabet="abcXYZ019-_.é中", min_size=1, max_size=8)
tokens = st.text(alphabet="abcdefxyz019_-./", min_size=1, max_size=10)
words = st.text(alphabet="abcé'ש中-", min_size=1, max_size=6)
positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
paths = tokens.map(lambda t: f"/corpus/{t}.wav")
arks = st.builds(WavArk, tokens.map(lambda t: f"/feats/{t}.ark"), st.integers(0, 10**12))
commands = st.lists(tokens, min_size=1, max_size=4).map(lambda ws: "gunzip -c " + " ".join(ws))
factors = st.floats(min_value=0.5, max_value=2.0, allow_nan=False)


def _segments() -> st.SearchStrategy[RecordingSegment]:
    def build(reco: str, start: float, length: float, to_end: bool) -> RecordingSegment:
        return RecordingSegment(reco, start, -1.0 if to_end else start + length)

    return st.builds(
        build,
        ids,
        st.floats(min_value=0, max_value=1e5, allow_nan=False),
        st.floats(min_value=1e-3, max_value=1e4, allow_nan=False),
        st.booleans(),
    ).filter(lambda s: s.end == -1 or s.end > s.start)


wav_entries = st.recursive(
    st.one_of(st.builds(WavPath, paths), arks, st.builds(WavPipe, commands)),
    lambda inner: st.builds(WavSpeed, inner, factors),
    max_leaves=3,
)

VALUES = {
    "wav.scp": wav_entries,
    "segments": _segments(),
    "text": st.lists(words, max_size=5).map(" ".join),
    "utt2spk": ids,
    "spk2utt": st.lists(ids, min_size=1, max_size=4),
    "spk2gender": st.sampled_from(["m", "f"]),
    "utt2dur": positive,
    "reco2dur": positive,
    "utt2num_frames": st.integers(1, 10**7),
    "reco2file_and_channel": st.tuples(tokens, st.sampled_from(["A", "B"])),
    "feats.scp": arks.map(format_wav_entry),
    "cmvn.scp": arks.map(format_wav_entry),
    "vad.scp": arks.map(format_wav_entry),
    "utt2lang": st.sampled_from(["en", "he", "fr-CA"]),
    "utt2uniq": ids,
    "utt2warp": st.floats(0.5, 1.5, exclude_min=True, exclude_max=True),
    "spk2warp": st.floats(0.5, 1.5, exclude_min=True, exclude_max=True),
}


def test_every_file_type_has_a_strategy() -> None:
    assert set(VALUES) == set(FORMATS)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_file_round_trip(name: str, tmp_path_factory) -> None:
    @SETTINGS
    @given(st.dictionaries(ids, VALUES[name], min_size=1, max_size=6))
    def round_trip(entries: dict) -> None:
        path = tmp_path_factory.mktemp("rt") / name
        write_file(path, entries)
        back = read_file(path)
        assert back == entries
        keys = [line.split(" ", 1)[0] for line in path.read_text("utf-8").splitlines()]
        assert keys == sorted(entries, key=c_sort_key)  # C-locale order
        assert path.read_bytes().endswith(b"\n")

    round_trip()


@SETTINGS
@given(wav_entries)
def test_wav_entry_round_trip(entry) -> None:
    text = format_wav_entry(entry)
    assert parse_wav_entry(text) == entry
    assert not text.endswith(" ") and "\n" not in text


def test_wav_entries_in_kaldi_spelling() -> None:
    """The three lines Kaldi's perturb_data_dir_speed.sh writes, and what they mean."""
    cases = {
        "sox -t wav /a.wav -t wav - speed 0.9 |": WavSpeed(WavPath("/a.wav"), 0.9),
        "wav-copy /x.ark:120 - | sox -t wav - -t wav - speed 1.1 |": WavSpeed(
            WavArk("/x.ark", 120), 1.1
        ),
        "flac -c -d -s /a.flac | sox -t wav - -t wav - speed 0.9 |": WavSpeed(
            WavPipe("flac -c -d -s /a.flac"), 0.9
        ),
        "sox -t wav /a.wav -t wav - speed 0.9 | sox -t wav - -t wav - speed 1.1 |": WavSpeed(
            WavSpeed(WavPath("/a.wav"), 0.9), 1.1
        ),
        "/data/a.wav": WavPath("/data/a.wav"),
        "raw/feats.ark:1234": WavArk("raw/feats.ark", 1234),
        "sph2pipe -f wav -p -c 1 /a.sph |": WavPipe("sph2pipe -f wav -p -c 1 /a.sph"),
        "sox /a.wav -t wav - remix 1 |": WavPipe("sox /a.wav -t wav - remix 1"),
    }
    for text, entry in cases.items():
        assert parse_wav_entry(text) == entry, text
        assert format_wav_entry(entry) == text
    assert not needs_shell(cases["sox -t wav /a.wav -t wav - speed 0.9 |"])
    assert needs_shell(cases["flac -c -d -s /a.flac | sox -t wav - -t wav - speed 0.9 |"])
    # Extra spaces, as Kaldi's awk/sed pipeline can leave them, mean the same thing.
    assert parse_wav_entry("sox  -t wav /a.wav  -t wav -  speed 0.9|") == WavSpeed(
        WavPath("/a.wav"), 0.9
    )


def test_format_float_is_exact_and_positional() -> None:
    for value in (0.1, 1.0, 2.5, 1e-6, 123456.789, 1 / 3, 7.0 / 0.9):
        text = format_float(value)
        assert "e" not in text and float(text) == value
    assert format_float(3.0) == "3" and format_float(-1) == "-1"


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("segments", "u r 1.0", "expected '<recording> <start> <end>'"),
        ("segments", "u r x 2", "start 'x' is not a number"),
        ("segments", "u r -1 2", "start -1 is negative"),
        ("segments", "u r 2 2", "end 2 is not after start 2"),
        ("utt2dur", "u 0", "duration 0 is not positive"),
        ("utt2dur", "u nan", "not a finite number"),
        ("utt2num_frames", "u 1.5", "frame count '1.5' is not a positive integer"),
        ("spk2gender", "s male", "gender 'male' must be 'm' or 'f'"),
        ("utt2spk", "u spk one", "speaker id 'spk one' must be one token"),
        ("reco2file_and_channel", "r f C", "channel 'C' must be A or B"),
        ("spk2warp", "s 1.6", "outside (0.5, 1.5)"),
    ],
)
def test_malformed_values_name_file_and_line(tmp_path: Path, name: str, line: str, message: str):
    path = tmp_path / name
    path.write_text(f"a-first {'x' if name == 'utt2spk' else _good(name)}\n{line}\n")
    with pytest.raises(DataDirError, match=rf"{name}:2: .*{_re(message)}"):
        read_file(path)


def _good(name: str) -> str:
    return {"segments": "r 0 1", "utt2dur": "1", "utt2num_frames": "10", "spk2gender": "m",
            "reco2file_and_channel": "f A", "spk2warp": "1.0"}[name]


def _re(text: str) -> str:
    import re

    return re.escape(text)


@SETTINGS
@given(st.dictionaries(ids, ids, min_size=1, max_size=10))
def test_utt2spk_spk2utt_inverse(utt2spk: dict[str, str]) -> None:
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    assert spk2utt_to_utt2spk(spk2utt) == utt2spk
    assert list(spk2utt) == sorted(spk2utt, key=c_sort_key)
    for utts in spk2utt.values():
        assert utts == sorted(utts, key=c_sort_key)


@st.composite
def segmented_dirs(draw) -> list[Utterance]:
    speakers = draw(st.lists(st.text("abXY", min_size=1, max_size=3), min_size=1, max_size=3,
                             unique=True))
    utts: dict[str, Utterance] = {}
    for _ in range(draw(st.integers(1, 8))):
        spk = draw(st.sampled_from(speakers))
        reco = f"{spk}-rec{draw(st.integers(0, 2))}"
        seg = draw(_segments())
        utt_id = f"{reco}-{draw(st.integers(0, 999)):04d}"
        utts[utt_id] = Utterance(utt_id, f"/audio/{reco}.wav", draw(words), spk,
                                 RecordingSegment(reco, seg.start, seg.end))
    return list(utts.values())


@SETTINGS
@given(segmented_dirs())
def test_segmented_data_dir_round_trip(tmp_path: Path, utts: list[Utterance]) -> None:
    target = tmp_path / "seg"
    shutil.rmtree(target, ignore_errors=True)
    write_data_dir(target, utts)
    assert read_data_dir(target).utterances == sorted(utts, key=lambda u: c_sort_key(u.utt_id))
    recos = {u.segment.recording for u in utts}
    assert len((target / "wav.scp").read_text().splitlines()) == len(recos)
