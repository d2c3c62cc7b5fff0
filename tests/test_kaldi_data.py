"""asr.data.datadir and asr.data.tables: data directory round trips, C-locale order, and
file:line errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr.data.datadir import read_data_dir, write_data_dir
from asr.data.tables import c_sort_key, read_kaldi_map, write_kaldi_map
from asr.data.utterance import RecordingSegment, Utterance
from asr.errors import DataDirError

FILES = ("wav.scp", "text", "utt2spk", "spk2utt")

speaker_ids = st.text(alphabet="abcXYZ01_", min_size=1, max_size=4)
suffixes = st.text(alphabet="abzAZ09-_.é", min_size=1, max_size=6)
words = st.text(alphabet="abcdéÅ'ש", min_size=1, max_size=5)


@st.composite
def utterance_sets(draw) -> list[Utterance]:
    speakers = draw(st.lists(speaker_ids, min_size=1, max_size=3, unique=True))
    utts: dict[str, Utterance] = {}
    for _ in range(draw(st.integers(1, 8))):
        speaker = draw(st.sampled_from(speakers))
        utt_id = f"{speaker}-{draw(suffixes)}"
        text = " ".join(draw(st.lists(words, min_size=0, max_size=4)))
        utts[utt_id] = Utterance(utt_id, f"/corpus/{speaker}/{utt_id}.wav", text, speaker)
    return list(utts.values())


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(utterance_sets())
def test_write_read_round_trip(tmp_path: Path, utterances: list[Utterance]) -> None:
    target = tmp_path / "data"
    shutil.rmtree(target, ignore_errors=True)
    written = write_data_dir(target, reversed(utterances))
    expected = sorted(utterances, key=lambda u: u.utt_id.encode("utf-8"))
    assert written.utterances == expected
    back = read_data_dir(target)
    assert back.utterances == expected
    assert back.speakers == sorted({u.speaker for u in utterances}, key=lambda s: s.encode())
    # Every written file is in C-locale (byte) order of its first field.
    for name in FILES:
        keys = [line.split(" ", 1)[0] for line in (target / name).read_text("utf-8").splitlines()]
        assert keys == sorted(keys, key=lambda k: k.encode("utf-8"))
        assert len(keys) == len(set(keys))
    spk2utt = read_kaldi_map(target / "spk2utt")
    for speaker, utts in spk2utt.items():
        assert utts.split() == [u.utt_id for u in expected if u.speaker == speaker]


def test_c_locale_order_matches_sort(tmp_path: Path) -> None:
    """Upper case before lower case, '-' before digits, non-ASCII last: as `LC_ALL=C sort`."""
    ids = ["b", "B", "a-1", "a1", "a_1", "a", "é", "Z", "a.1", "aa"]
    write_kaldi_map(tmp_path / "text", {i: "x" for i in ids})
    keys = [line.split(" ")[0] for line in (tmp_path / "text").read_text("utf-8").splitlines()]
    assert keys == ["B", "Z", "a", "a-1", "a.1", "a1", "a_1", "aa", "b", "é"]
    assert keys == sorted(ids, key=c_sort_key)
    if shutil.which("sort"):
        env = {**os.environ, "LC_ALL": "C"}
        check = subprocess.run(["sort", "-c", str(tmp_path / "text")], env=env, capture_output=True)
        assert check.returncode == 0, check.stderr


def test_relative_wav_paths_are_resolved_against_cwd(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "wav.scp").write_text("s-1 wav/s-1.wav\n")
    (data / "text").write_text("s-1 hello\n")
    monkeypatch.chdir(tmp_path)
    (utt,) = read_data_dir(data).utterances
    assert utt.wav == str(tmp_path / "wav" / "s-1.wav")
    assert utt.speaker == "s-1"  # no utt2spk: each utterance is its own speaker


def test_empty_transcript_allowed_in_text(tmp_path: Path) -> None:
    write_data_dir(
        tmp_path, [Utterance("s-1", "/a.wav", "", "s"), Utterance("s-2", "/b.wav", "hi", "s")]
    )
    assert (tmp_path / "text").read_text() == "s-1 \ns-2 hi\n"
    assert [u.text for u in read_data_dir(tmp_path).utterances] == ["", "hi"]


def _data_dir(tmp_path: Path, wav_scp: bytes, text: bytes | None = b"a x\nb y\n") -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "wav.scp").write_bytes(wav_scp)
    if text is not None:
        (data / "text").write_bytes(text)
    return data


@pytest.mark.parametrize(
    ("wav_scp", "message"),
    [
        (b"a /a.wav\nb /b.wav\na /c.wav\n", r"wav.scp:3: duplicate id 'a'"),
        (b"a /a.wav\r\nb /b.wav\r\n", r"wav.scp:1: CRLF"),
        (b"a /a.wav\n\nb /b.wav\n", r"wav.scp:2: blank line"),
        (b"a /a.wav\nb /b\xff.wav\n", r"wav.scp:2: not valid UTF-8"),
        (b"a /a.wav\nb\n", r"wav.scp:2: 'b' has no value"),
        (b"a /a.wav\nb /b.wav\n\n", r"wav.scp:3: blank line"),
    ],
    ids=["duplicate", "crlf", "blank-line", "non-utf8", "no-value", "trailing-blank-line"],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, wav_scp: bytes, message: str) -> None:
    data = _data_dir(tmp_path, wav_scp)
    with pytest.raises(DataDirError, match=message) as info:
        read_data_dir(data)
    assert str(data / "wav.scp") in str(info.value)


def test_pipe_in_wav_scp_needs_opt_in(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ASR_ALLOW_PIPES", raising=False)
    data = _data_dir(tmp_path, b"a /a.wav\nb sox /b.flac -t wav - |\n")
    with pytest.raises(DataDirError) as info:
        read_data_dir(data)
    message = str(info.value)
    assert message.startswith(f"{data / 'wav.scp'}:2: 'b' is read through a shell command")
    assert "--allow-pipes" in message and "ASR_ALLOW_PIPES=1" in message
    assert "\n" not in message
    utts = read_data_dir(data, allow_pipes=True).utterances
    assert [u.wav for u in utts] == ["/a.wav", "sox /b.flac -t wav - |"]
    monkeypatch.setenv("ASR_ALLOW_PIPES", "1")
    assert len(read_data_dir(data)) == 2
    with pytest.raises(DataDirError, match="shell command"):
        read_data_dir(data, allow_pipes=False)  # an explicit refusal wins over the environment


def test_kaldi_speed_lines_need_no_opt_in(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ASR_ALLOW_PIPES", raising=False)
    data = _data_dir(
        tmp_path,
        b"a sox -t wav /a.wav -t wav - speed 0.9 |\n"
        b"b wav-copy /b.ark:12 - | sox -t wav - -t wav - speed 1.1 |\n",
    )
    assert len(read_data_dir(data)) == 2
    (data / "wav.scp").write_bytes(b"a gunzip -c /a.wav.gz | sox -t wav - -t wav - speed 0.9 |\nb x.wav\n")
    with pytest.raises(DataDirError, match="wav.scp:1: 'a' is read through a shell command"):
        read_data_dir(data)


def test_tabs_separate_fields_as_in_kaldi(tmp_path: Path) -> None:
    data = _data_dir(tmp_path, b"a\t/a.wav\nb  /b.wav\n", text=b"a\thello\tworld\nb \n")
    utts = read_data_dir(data).utterances
    assert [(u.utt_id, u.wav, u.text) for u in utts] == [
        ("a", "/a.wav", "hello\tworld"),
        ("b", "/b.wav", ""),
    ]


def test_segments_round_trip_and_errors(tmp_path: Path) -> None:
    utts = [
        Utterance("s-r1-0001", "/rec/r1.wav", "one", "s", RecordingSegment("r1", 0.0, 1.25)),
        Utterance("s-r1-0002", "/rec/r1.wav", "two", "s", RecordingSegment("r1", 1.5, 3.0)),
        Utterance("s-r2-0001", "/rec/r2.flac", "", "s", RecordingSegment("r2", 0.25, -1)),
    ]
    written = write_data_dir(tmp_path / "d", utts)
    assert (tmp_path / "d" / "wav.scp").read_text() == "r1 /rec/r1.wav\nr2 /rec/r2.flac\n"
    assert (tmp_path / "d" / "segments").read_text() == (
        "s-r1-0001 r1 0 1.25\ns-r1-0002 r1 1.5 3\ns-r2-0001 r2 0.25 -1\n"
    )
    assert read_data_dir(written.path).utterances == utts
    (tmp_path / "d" / "segments").write_text("s-r1-0001 r1 0 1.25\ns-r1-0002 r9 1.5 3\n")
    with pytest.raises(DataDirError, match=r"segments:2: recording 'r9' of utterance 's-r1-0002'"):
        read_data_dir(written.path, require_text=False)
    (tmp_path / "d" / "segments").write_text("s-r1-0001 r1 2 1\n")
    with pytest.raises(DataDirError, match=r"segments:1: end 1 is not after start 2"):
        read_data_dir(written.path, require_text=False)
    with pytest.raises(DataDirError, match="some utterances have segments and others not"):
        write_data_dir(tmp_path / "mixed", [utts[0], Utterance("s-x", "/x.wav", "", "s")])
    with pytest.raises(DataDirError, match="recording 'r1' has two audio entries"):
        write_data_dir(tmp_path / "two", [utts[0], Utterance("s-y", "/y.wav", "", "s", utts[0].segment)])


def test_missing_files_and_transcripts(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="data directory not found"):
        read_data_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataDirError, match="wav.scp: file not found"):
        read_data_dir(tmp_path / "empty")
    data = _data_dir(tmp_path, b"a /a.wav\nb /b.wav\n", text=None)
    with pytest.raises(DataDirError, match="no 'text' file"):
        read_data_dir(data)
    assert [u.text for u in read_data_dir(data, require_text=False).utterances] == ["", ""]
    (data / "text").write_text("a x\n")
    with pytest.raises(DataDirError, match="no transcript for utterance 'b'"):
        read_data_dir(data)
    (data / "text").write_text("a x\nb y\nc z\n")
    with pytest.raises(DataDirError, match="no entry in wav.scp, first 'c'"):
        read_data_dir(data)


def test_speaker_must_prefix_utterance_id(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="'x-1' does not start with its speaker id 'spk'"):
        write_data_dir(tmp_path, [Utterance("x-1", "/a.wav", "hi", "spk")])
    assert not (tmp_path / "wav.scp").exists()


def test_write_rejects_duplicates_and_bad_ids(tmp_path: Path) -> None:
    utt = Utterance("s-1", "/a.wav", "hi", "s")
    with pytest.raises(DataDirError, match="duplicate utterance ids"):
        write_data_dir(tmp_path / "dup", [utt, utt])
    with pytest.raises(DataDirError, match="invalid id 'a b'"):
        write_kaldi_map(tmp_path / "map", {"a b": "x"})
    with pytest.raises(DataDirError, match="invalid id ''"):
        write_kaldi_map(tmp_path / "map", [("", "x")])


def test_read_kaldi_map_values_keep_inner_spaces(tmp_path: Path) -> None:
    path = tmp_path / "text"
    path.write_text("u1 hello  big world\nu2  leading\n")
    assert read_kaldi_map(path) == {"u1": "hello  big world", "u2": "leading"}
