"""asr.data.validate and asr.data.fix: every class of corruption is reported with its file and
line; fix repairs what it can and counts what it dropped; what the toolkit writes is valid."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kaldi_format import kaldi_check

from asr.cli import main as asr_main
from asr.corpora import fsdd, yesno
from asr.data.datadir import write_data_dir
from asr.data.fix import fix_data_dir
from asr.data.utterance import RecordingSegment, Utterance
from asr.data.validate import has_errors, validate_data_dir

RATE = 8000


def _wav(path: Path, seconds: float) -> str:
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE, subtype="PCM_16")
    return str(path)


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """3 utterances of 2 speakers, one file each (1 s)."""
    utts = [
        Utterance(u, _wav(tmp_path / f"{u}.wav", 1.0), text, spk)
        for u, text, spk in [("spkA-1", "hello world", "spkA"), ("spkA-2", "good bye", "spkA"),
                             ("spkB-1", "yes", "spkB")]
    ]
    return write_data_dir(tmp_path / "plain", utts).path


@pytest.fixture
def segmented(tmp_path: Path) -> Path:
    """4 utterances cut from 2 recordings of 2 s."""
    rec_a, rec_b = _wav(tmp_path / "a.wav", 2.0), _wav(tmp_path / "b.wav", 2.0)
    utts = [
        Utterance("spkA-r1-1", rec_a, "one", "spkA", RecordingSegment("spkA-r1", 0.0, 1.0)),
        Utterance("spkA-r1-2", rec_a, "two", "spkA", RecordingSegment("spkA-r1", 1.0, 2.0)),
        Utterance("spkB-r2-1", rec_b, "three", "spkB", RecordingSegment("spkB-r2", 0.5, 1.5)),
        Utterance("spkB-r2-2", rec_b, "four", "spkB", RecordingSegment("spkB-r2", 1.5, 1.99)),
    ]
    return write_data_dir(tmp_path / "seg", utts).path


def _edit(name: str, transform: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(data: Path) -> None:
        (data / name).write_bytes(transform((data / name).read_bytes()))

    return apply


def _append(name: str, line: bytes) -> Callable[[Path], None]:
    return _edit(name, lambda b: b + line)


def _replace(name: str, old: bytes, new: bytes) -> Callable[[Path], None]:
    def transform(content: bytes) -> bytes:
        assert old in content, (name, old, content)
        return content.replace(old, new, 1)

    return _edit(name, transform)


def _several(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(data: Path) -> None:
        for step in steps:
            step(data)

    return apply


# (corruption, file, line, message fragment): each must be reported exactly there.
PLAIN_CASES = {
    "duplicate-id": (_append("text", b"spkA-1 again\n"), "text", 4,
                     "duplicate id 'spkA-1' (first on line 1)"),
    "unsorted": (_edit("text", lambda b: b"".join(reversed(b.splitlines(keepends=True)))),
                 "text", 2, "'spkA-2' is out of order (after 'spkB-1' on line 1)"),
    "text-not-in-wav-scp": (
        _several(_append("text", b"spkB-2 extra\n"), _append("utt2spk", b"spkB-2 spkB\n"),
                 _replace("spk2utt", b"spkB spkB-1", b"spkB spkB-1 spkB-2")),
        "utt2spk", 4, "utterance 'spkB-2' has no line in wav.scp"),
    "text-only-utterance": (_append("text", b"spkC-1 who\n"), "text", 4,
                            "utterance 'spkC-1' is not in utt2spk"),
    "speaker-missing-from-spk2utt": (_replace("spk2utt", b"spkB spkB-1\n", b""), "utt2spk", 3,
                                     "speaker 'spkB' is not in spk2utt"),
    "spk2utt-disagrees": (_replace("spk2utt", b"spkA spkA-1 spkA-2", b"spkA spkA-1"),
                          "spk2utt", 1, "utterances of speaker 'spkA' differ from utt2spk"),
    "non-utf8": (_replace("text", b"good bye", b"good b\xffye"), "text", 2, "not valid UTF-8"),
    "crlf": (_edit("wav.scp", lambda b: b.replace(b"\n", b"\r\n")), "wav.scp", 1,
             "CRLF line ending"),
    "blank-line": (_replace("utt2spk", b"spkA\n", b"spkA\n\n"), "utt2spk", 2, "blank line"),
    "space-in-speaker-id": (_replace("utt2spk", b"spkA-1 spkA", b"spkA-1 spk A"), "utt2spk", 1,
                            "speaker id 'spk A' must be one token"),
    "odd-space-in-id": (_replace("text", b"spkA-2 ", "spkA\u00a02 ".encode()), "text", 2,
                        "holds a whitespace character (U+00A0)"),
    "no-final-newline": (_edit("text", lambda b: b.rstrip(b"\n")), "text", 3,
                         "no newline at the end of the file"),
    "spk-sort": (
        _several(_replace("utt2spk", b"spkA-1 spkA", b"spkA-1 zed"),
                 _replace("spk2utt", b"spkA spkA-1 spkA-2\n", b"spkA spkA-2\n"),
                 _append("spk2utt", b"zed spkA-1\n")),
        "utt2spk", 2, "utt2spk is not sorted by speaker too"),
    "illegal-symbol": (_replace("text", b"spkA-1 hello", b"spkA-1 <s> hello"), "text", 1,
                       "reserved symbol '<s>'"),
    "odd-space-in-text": (_replace("text", b"hello world", "hello\u3000world".encode()),
                          "text", 1, "U+3000"),
    "missing-audio": (_replace("wav.scp", b"spkB-1.wav", b"gone.wav"), "wav.scp", 3,
                      "gone.wav not found"),
    "tilde": (_replace("wav.scp", b"spkB-1 /", b"spkB-1 ~/"), "wav.scp", 3, "starts with '~'"),
    "utt2dur-mismatch": (lambda d: (d / "utt2dur").write_text("spkA-1 1.0\nspkA-2 1.0\n"),
                         "utt2spk", 3, "utterance 'spkB-1' has no line in utt2dur"),
    "bad-duration": (lambda d: (d / "utt2dur").write_text("spkA-1 1\nspkA-2 -2\nspkB-1 1\n"),
                     "utt2dur", 2, "duration -2 is not positive"),
    "bad-gender": (lambda d: (d / "spk2gender").write_text("spkA m\nspkB x\n"), "spk2gender", 2,
                   "gender 'x' must be 'm' or 'f'"),
    "gender-missing-speaker": (lambda d: (d / "spk2gender").write_text("spkA m\n"), "utt2spk", 3,
                               "speaker 'spkB' has no line in spk2gender"),
    "feats-mismatch": (lambda d: (d / "feats.scp").write_text("spkA-1 f.ark:1\nspkZ-1 f.ark:9\n"),
                       "feats.scp", 2, "utterance 'spkZ-1' is not in utt2spk"),
}

SEGMENT_CASES = {
    "beyond-end": (_replace("segments", b"spkA-r1 1 2", b"spkA-r1 1 5"), "segments", 2,
                   "'spkA-r1-2' ends at 5 s, after the end of recording 'spkA-r1' (2.00 s)"),
    "end-not-after-start": (_replace("segments", b"spkB-r2 0.5 1.5", b"spkB-r2 1.5 0.5"),
                            "segments", 3, "end 0.5 is not after start 1.5"),
    "unknown-recording": (_replace("segments", b"spkB-r2 0.5", b"spkB-r9 0.5"), "segments", 3,
                          "recording 'spkB-r9' is not in wav.scp"),
    "unused-recording": (_append("wav.scp", b"spkC-r3 /c.wav\n"), "wav.scp", 3,
                         "recording 'spkC-r3' is used by no segment"),
    "end-minus-one": (_replace("segments", b"spkA-r1 1 2", b"spkA-r1 1 -1"), "segments", 2,
                      "end -1"),
    "reco2dur-mismatch": (lambda d: (d / "reco2dur").write_text("spkA-r1 2\n"), "wav.scp", 2,
                          "recording 'spkB-r2' has no line in reco2dur"),
}


def _find(problems, data: Path, name: str, line: int, fragment: str):
    return [p for p in problems
            if p.path == data / name and p.line == line and fragment in p.message]


def test_clean_dirs_have_no_errors(plain: Path, segmented: Path, tmp_path: Path) -> None:
    for data in (plain, segmented):
        problems = validate_data_dir(data)
        assert problems == [], [str(p) for p in problems]
        assert kaldi_check(data, tmp_path) == []


@pytest.mark.parametrize("case", sorted(PLAIN_CASES))
def test_each_corruption_is_reported_with_file_and_line(plain: Path, case: str) -> None:
    corrupt, name, line, fragment = PLAIN_CASES[case]
    corrupt(plain)
    problems = validate_data_dir(plain)
    assert has_errors(problems)
    assert _find(problems, plain, name, line, fragment), [str(p) for p in problems]


@pytest.mark.parametrize("case", sorted(SEGMENT_CASES))
def test_each_segment_corruption_is_reported(segmented: Path, case: str) -> None:
    corrupt, name, line, fragment = SEGMENT_CASES[case]
    corrupt(segmented)
    problems = validate_data_dir(segmented)
    assert has_errors(problems)
    assert _find(problems, segmented, name, line, fragment), [str(p) for p in problems]


def test_every_problem_is_reported_not_just_the_first(plain: Path) -> None:
    for case in ("duplicate-id", "crlf", "blank-line", "non-utf8"):
        PLAIN_CASES[case][0](plain)
    problems = validate_data_dir(plain)
    located = {(p.path.name, p.line) for p in problems}
    assert {("text", 4), ("wav.scp", 1), ("wav.scp", 2), ("wav.scp", 3), ("utt2spk", 2),
            ("text", 2)} <= located


def test_requirements_and_options(plain: Path) -> None:
    (plain / "text").unlink()
    problems = validate_data_dir(plain)
    assert [str(p) for p in problems] == [f"{plain / 'text'}: file not found (if this is by "
                                          "design, use --no-text)"]
    assert validate_data_dir(plain, require_text=False) == []
    problems = validate_data_dir(plain, require_text=False, require_feats=True)
    assert [p.path.name for p in problems] == ["feats.scp"]
    (plain / "spk2utt").unlink()
    assert any("spk2utt: file not found" in str(p) for p in validate_data_dir(plain))
    assert validate_data_dir(plain.parent / "nope")[0].message == "data directory not found"


def test_no_spk_sort_option(plain: Path) -> None:
    PLAIN_CASES["spk-sort"][0](plain)
    assert [p.kind for p in validate_data_dir(plain)] == ["spk-sort"]
    assert validate_data_dir(plain, spk_sort=False) == []


def test_one_speaker_is_only_a_warning(tmp_path: Path) -> None:
    data = write_data_dir(tmp_path / "d", [Utterance("s-1", _wav(tmp_path / "x.wav", 0.5), "a",
                                                     "s")]).path
    (problem,) = validate_data_dir(data)
    assert problem.severity == "warning" and "only one speaker" in problem.message
    assert str(problem).startswith(f"{data / 'utt2spk'}: warning: ")


def test_validate_cli_prints_each_problem(plain: Path, capsys) -> None:
    PLAIN_CASES["duplicate-id"][0](plain)
    PLAIN_CASES["crlf"][0](plain)
    assert asr_main.main(["data", "validate", str(plain)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{plain / 'text'}:4: duplicate id 'spkA-1' (first on line 1)" in out
    assert f"{plain / 'wav.scp'}:1: CRLF line ending; convert the file with dos2unix" in out
    assert out[-1].startswith(f"{plain}: 4 error(s), 0 warning(s)")


# ---- fix


def test_fix_repairs_and_counts(plain: Path, tmp_path: Path) -> None:
    for case in ("duplicate-id", "crlf", "blank-line", "text-only-utterance"):
        PLAIN_CASES[case][0](plain)
    _edit("utt2spk", lambda b: b"".join(reversed(b.splitlines(keepends=True))))(plain)
    (plain / "spk2utt").unlink()
    _append("wav.scp", b"spkC-9 /nowhere.wav\n")(plain)  # an utterance nothing else knows
    _replace("text", b"good bye", b"good b\xffye")(plain)  # that line is lost
    original_text = (plain / "text").read_bytes()
    report = fix_data_dir(plain)
    assert report.dropped[("text", "duplicate id (first line kept)")] == 1
    assert report.dropped[("text", "not valid UTF-8")] == 1
    assert report.dropped[("utt2spk", "blank line")] == 1
    assert report.repaired[("wav.scp", "CRLF line ending converted")] == 3
    assert report.repaired[("utt2spk", "line out of order (file sorted)")] == 2
    # spkA-2 lost its transcript, spkC-1 has only a transcript, spkC-9 only audio.
    assert report.counts["utterances"] == (5, 2)
    assert report.counts["speakers"] == (2, 2)
    assert report.remaining == []
    assert (plain / ".backup" / "text").read_bytes() == original_text
    assert (plain / "utt2spk").read_text() == "spkA-1 spkA\nspkB-1 spkB\n"
    assert (plain / "spk2utt").read_text() == "spkA spkA-1\nspkB spkB-1\n"
    assert (plain / "text").read_text() == "spkA-1 hello world\nspkB-1 yes\n"
    assert kaldi_check(plain, tmp_path) == []
    lines = report.lines()
    assert f"{plain}: kept 2 of 5 utterances" in lines
    assert f"{plain / 'text'}: dropped 1: duplicate id (first line kept)" in lines


def test_fix_segments(segmented: Path, tmp_path: Path) -> None:
    _replace("segments", b"spkA-r1 1 2", b"spkA-r1 1 -1")(segmented)
    _replace("segments", b"spkB-r2 0.5 1.5", b"spkB-r2 0.5 2.3")(segmented)  # 0.3 s over
    _replace("segments", b"spkB-r2 1.5 1.99", b"spkB-r2 2.6 3")(segmented)  # past the end
    _append("wav.scp", b"spkC-r3 /c.wav\n")(segmented)
    report = fix_data_dir(segmented)
    assert report.repaired[("segments", "end -1 replaced by the recording's duration")] == 1
    assert report.repaired[("segments", "end clipped to the recording's end")] == 1
    assert report.dropped[("segments", "segment past the end of its recording")] == 1
    assert report.dropped[("wav.scp", "recording used by no kept segment")] == 1
    assert report.counts["utterances"] == (4, 3) and report.counts["recordings"] == (3, 2)
    assert (segmented / "segments").read_text() == (
        "spkA-r1-1 spkA-r1 0 1\nspkA-r1-2 spkA-r1 1 2\nspkB-r2-1 spkB-r2 0.5 2\n"
    )
    assert report.remaining == [] and kaldi_check(segmented, tmp_path) == []


def test_fix_creates_utt2spk_and_reports_what_it_cannot_repair(plain: Path) -> None:
    (plain / "utt2spk").unlink()
    report = fix_data_dir(plain)
    assert report.repaired[("utt2spk", "created from spk2utt")] == 3
    assert (plain / "utt2spk").read_text() == "spkA-1 spkA\nspkA-2 spkA\nspkB-1 spkB\n"
    PLAIN_CASES["missing-audio"][0](plain)
    report = fix_data_dir(plain)
    assert [p.kind for p in report.remaining] == ["no-audio"]


def test_fix_cli(plain: Path, capsys) -> None:
    PLAIN_CASES["duplicate-id"][0](plain)
    assert asr_main.main(["data", "fix", str(plain)]) == 0
    out = capsys.readouterr().out
    assert f"{plain / 'text'}: dropped 1: duplicate id (first line kept)" in out
    assert asr_main.main(["data", "validate", str(plain)]) == 0


# ---- what the toolkit writes is valid


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "B", "a_b", "é"]), st.text("xyz019-é", min_size=1,
                                                                           max_size=4)),
                min_size=1, max_size=8, unique=True))
def test_written_dirs_pass_kaldi_rules(tmp_path: Path, pairs) -> None:
    target = tmp_path / "w"
    shutil.rmtree(target, ignore_errors=True)
    utts = [Utterance(f"{spk}-{suffix}", f"/x/{spk}{suffix}.wav", "w o r d", spk)
            for spk, suffix in pairs]
    write_data_dir(target, utts)
    assert kaldi_check(target, tmp_path) == []
    assert not has_errors(validate_data_dir(target, check_audio=False))


def test_prepared_yesno_dirs_are_valid(yesno_waves: Path, tmp_path: Path) -> None:
    dirs = yesno.prepare(yesno_waves.parent, tmp_path / "data")
    for path in dirs.values():
        problems = validate_data_dir(path)
        assert not has_errors(problems), [str(p) for p in problems]
        assert kaldi_check(path, tmp_path) == []
        # The Kaldi-named wrapper, with Kaldi's own option for directories without features.
        assert asr_main.main(["data", "validate", str(path)]) == 0


def test_prepared_fsdd_dirs_are_valid(fsdd_recordings: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "fsdd" / "recordings"
    corpus.mkdir(parents=True)
    for speaker in ("george", "jackson"):
        for digit in range(10):
            for take in range(12):
                name = f"{digit}_{speaker}_{take}.wav"
                if not (fsdd_recordings / name).is_file():
                    pytest.skip(f"{name} missing from the shared FSDD copy")
                os.symlink(fsdd_recordings / name, corpus / name)
    dirs = fsdd.prepare(corpus.parent, tmp_path / "data", num_train=10, num_dev=4, num_test=4)
    for path in dirs.values():
        problems = validate_data_dir(path)
        assert not has_errors(problems), [str(p) for p in problems]
        assert kaldi_check(path, tmp_path) == []
