"""asr.scoring.readers: Kaldi text (bulk path equals the line-by-line reader) and sclite trn."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.data.tables import read_kaldi_map
from asr.errors import AsrError
from asr.scoring.readers import read_transcripts, read_trn, speaker_from_trn_id


def test_bulk_text_reader_equals_the_kaldi_reader(tmp_path: Path) -> None:
    path = tmp_path / "text"
    path.write_text("b-2  two\twords  \n  a-1 one\nc-3\nd-4 café ﬁ\n")
    assert read_transcripts(path) == read_kaldi_map(path, allow_empty_value=True)
    assert read_transcripts(path) == {"b-2": "two\twords", "a-1": "one", "c-3": "", "d-4": "café ﬁ"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a x\n\nb y\n", ":2: blank line"),
        (b"a x\na y\n", ":2: duplicate id 'a'"),
        (b"a x\r\n", ":1: CRLF line ending"),
        (b"a x\n\xff y\n", ":2: not valid UTF-8"),
    ],
)
def test_problem_files_get_the_kaldi_readers_message(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "text"
    path.write_bytes(content)
    with pytest.raises(AsrError, match=message):
        read_transcripts(path)


def test_trn(tmp_path: Path) -> None:
    path = tmp_path / "hyp.trn"
    path.write_text("the cat (spk1-utt1)\n(spk1-utt2)\n  a (b) c   (spk2_u3)  \n")
    assert read_trn(path) == {"spk1-utt1": "the cat", "spk1-utt2": "", "spk2_u3": "a (b) c"}
    assert [speaker_from_trn_id(u) for u in read_trn(path)] == ["spk1", "spk1", "spk2"]
    assert speaker_from_trn_id("nodash") == "nodash"
    with pytest.raises(AsrError, match="unknown transcript format"):
        read_transcripts(path, "ctm")
    path.write_text("words (a b)\n")
    with pytest.raises(AsrError, match=r":1: invalid utterance id '\(a b\)'"):
        read_trn(path)
