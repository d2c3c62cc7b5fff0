"""asr.writers: every output format on a known result, byte for byte."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asr.transcript import Result, Word
from asr.writers import FORMATS, format_result, output_name, timestamp, write_result

RESULT = Result("one two three", 5.0, [Word("one", 0.3, 0.75, 0.91234), Word("two", 1.2, 1.53, 0.5),
                                       Word("three", 3.6, 4.02, 0.75)])


def test_segments_of_the_result() -> None:
    assert [(s.start, s.end, s.text) for s in RESULT.segments] == [(0.3, 1.53, "one two"),
                                                                  (3.6, 4.02, "three")]


def test_srt() -> None:
    assert format_result(RESULT, "srt") == (
        "1\n00:00:00,300 --> 00:00:01,530\none two\n\n"
        "2\n00:00:03,600 --> 00:00:04,020\nthree\n\n"
    )
    per_word = format_result(RESULT, "srt", word_timestamps=True)
    assert per_word.count(" --> ") == 3 and "2\n00:00:01,200 --> 00:00:01,530\ntwo\n" in per_word


def test_vtt() -> None:
    assert format_result(RESULT, "vtt") == (
        "WEBVTT\n\n00:00:00.300 --> 00:00:01.530\none two\n\n00:00:03.600 --> 00:00:04.020\nthree\n\n"
    )


def test_tsv() -> None:
    assert format_result(RESULT, "tsv") == "start\tend\ttext\n300\t1530\tone two\n3600\t4020\tthree\n"
    assert format_result(RESULT, "tsv", word_timestamps=True).splitlines()[1:] == [
        "300\t750\tone", "1200\t1530\ttwo", "3600\t4020\tthree"]


def test_ctm_names_the_recording() -> None:
    assert format_result(RESULT, "ctm", name="my rec") == (
        "my_rec 1 0.300 0.450 one 0.9123\nmy_rec 1 1.200 0.330 two 0.5000\n"
        "my_rec 1 3.600 0.420 three 0.7500\n"
    )


def test_json_round_trips() -> None:
    data = json.loads(format_result(RESULT, "json"))
    assert data["segments"] == [{"start": 0.3, "end": 1.53, "text": "one two"},
                                {"start": 3.6, "end": 4.02, "text": "three"}]
    assert data["words"][0] == {"word": "one", "start": 0.3, "end": 0.75, "confidence": 0.91234}


def test_empty_transcript() -> None:
    empty = Result("", 2.0)
    assert format_result(empty, "txt") == "\n"
    assert format_result(empty, "srt") == ""
    assert format_result(empty, "vtt") == "WEBVTT\n\n"
    assert format_result(empty, "tsv") == "start\tend\ttext\n"
    assert format_result(empty, "ctm") == ""
    assert json.loads(format_result(empty, "json"))["segments"] == []


def test_write_every_format_atomically(tmp_path: Path) -> None:
    for fmt in FORMATS:
        path = write_result(RESULT, "/data/a.b.wav", tmp_path, fmt)
        assert path == tmp_path / f"a.b.{fmt}"
        assert path.read_text() == format_result(RESULT, fmt, "a.b")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"a.b.{f}" for f in FORMATS)
    assert output_name("-") == "stdin"
    with pytest.raises(ValueError, match="unknown output format"):
        format_result(RESULT, "docx")


def test_cue_text_cannot_break_a_cue() -> None:
    odd = Result("a\n\nb --> c", 1.0)
    assert format_result(odd, "srt") == "1\n00:00:00,000 --> 00:00:01,000\na b -> c\n\n"


@given(st.integers(min_value=0, max_value=100 * 3_600_000))
def test_timestamp_round_trips(millis: int) -> None:
    text = timestamp(millis / 1000)
    h, m, s, ms = map(int, re.fullmatch(r"(\d\d+):(\d\d):(\d\d)\.(\d\d\d)", text).groups())
    assert m < 60 and s < 60
    assert ((h * 60 + m) * 60 + s) * 1000 + ms == millis
    assert timestamp(millis / 1000, ",") == text.replace(".", ",")
