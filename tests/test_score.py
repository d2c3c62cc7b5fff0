"""asr.score: edit counts, Kaldi compute-wer lines, missing/extra utterances, CER."""

from __future__ import annotations

import math

import pytest

from asr.errors import AsrError
from asr.score import ErrorCounts, char_errors, score, word_errors


def counts(c: ErrorCounts) -> tuple[int, int, int, int]:
    return c.ref_len, c.ins, c.dels, c.subs


def test_one_substitution_kaldi_line() -> None:
    report = score({"u1": "the cat sat down"}, {"u1": "the bat sat down"})
    assert counts(report.wer) == (4, 0, 0, 1)
    assert report.wer.kaldi_line() == "%WER 25.00 [ 1 / 4, 0 ins, 0 del, 1 sub ]"
    assert report.wer.ser_line() == "%SER 100.00 [ 1 / 1 ]"
    assert report.lines()[0] == "%WER 25.00 [ 1 / 4, 0 ins, 0 del, 1 sub ]"
    assert report.lines()[2].startswith("%CER ")


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [
        ("a b c", "a b c", (3, 0, 0, 0)),
        ("a b c", "a x b c", (3, 1, 0, 0)),
        ("a b c", "a c", (3, 0, 1, 0)),
        ("a b c", "x y z", (3, 0, 0, 3)),
        ("a b c", "", (3, 0, 3, 0)),
        ("a b c d", "b c d e f", (4, 2, 1, 0)),
        ("one two three four five six", "one too three five six seven", (6, 1, 1, 1)),
    ],
)
def test_word_edit_counts(ref: str, hyp: str, expected: tuple[int, int, int, int]) -> None:
    assert counts(word_errors([ref], [hyp])) == expected


def test_counts_sum_over_utterances_and_rates() -> None:
    refs = {"a": "yes no yes", "b": "no no", "c": "yes"}
    hyps = {"a": "yes yes", "b": "no no no", "c": "yes"}
    report = score(refs, hyps)
    assert counts(report.wer) == (6, 1, 1, 0)
    assert report.wer.errors == 2
    assert report.wer.rate == pytest.approx(100 * 2 / 6)
    assert report.wer.kaldi_line() == "%WER 33.33 [ 2 / 6, 1 ins, 1 del, 0 sub ]"
    assert (report.wer.utts, report.wer.utts_with_errors) == (3, 2)
    assert report.wer.ser_line() == "%SER 66.67 [ 2 / 3 ]"


def test_missing_hypotheses_are_deletions_and_listed() -> None:
    refs = {"a": "one two", "b": "three four five", "c": "six"}
    report = score(refs, {"a": "one two"})
    assert counts(report.wer) == (6, 0, 4, 0)
    assert report.missing == ["b", "c"]
    assert report.lines()[-1] == "# 2 utterance(s) had no hypothesis (scored as deletions): b, c"
    assert report.to_dict()["missing"] == ["b", "c"]


def test_extra_hypotheses_raise_unless_ignored() -> None:
    refs = {"a": "one"}
    hyps = {"a": "one", "zz": "two"}
    with pytest.raises(AsrError, match="'zz'"):
        score(refs, hyps)
    report = score(refs, hyps, ignore_extra=True)
    assert counts(report.wer) == (1, 0, 0, 0)
    assert report.wer.utts == 1


def test_empty_reference() -> None:
    both_empty = word_errors([""], [""])
    assert counts(both_empty) == (0, 0, 0, 0)
    assert both_empty.rate == 0.0
    assert both_empty.utts == 1 and both_empty.utts_with_errors == 0
    inserted = word_errors([""], ["uh huh"])
    assert counts(inserted) == (0, 2, 0, 0)
    assert math.isinf(inserted.rate)
    assert inserted.utts_with_errors == 1
    # Mixed with non-empty references: the insertions count against their words.
    mixed = word_errors(["", "a b"], ["x", "a b"])
    assert counts(mixed) == (2, 1, 0, 0)
    assert mixed.kaldi_line() == "%WER 50.00 [ 1 / 2, 1 ins, 0 del, 0 sub ]"
    assert (mixed.utts, mixed.utts_with_errors) == (2, 1)


def test_per_speaker_sums_equal_totals() -> None:
    refs = {
        "s1-a": "one two three",
        "s1-b": "four five",
        "s2-a": "six seven",
        "s2-b": "eight",
        "s3-a": "nine nine nine",
    }
    hyps = {
        "s1-a": "one two tree",
        "s1-b": "four",
        "s2-a": "six seven seven",
        "s2-b": "eight",
        "s3-a": "",
    }
    utt2spk = {u: u.split("-")[0] for u in refs}
    report = score(refs, hyps, utt2spk)
    assert sorted(report.per_speaker) == ["s1", "s2", "s3"]
    assert counts(report.per_speaker["s1"]) == (5, 0, 1, 1)
    assert counts(report.per_speaker["s2"]) == (3, 1, 0, 0)
    assert counts(report.per_speaker["s3"]) == (3, 0, 3, 0)
    total = ErrorCounts()
    for c in report.per_speaker.values():
        total += c
    assert total == report.wer
    table = report.speaker_table().splitlines()
    assert table[0].startswith("| speaker |") and len(table) == 2 + 3
    assert table[2] == "| s1 | 2 | 5 | 40.00 | 0 | 1 | 1 |"


def test_cer_counts_characters_and_spaces() -> None:
    assert counts(char_errors(["abc"], ["abd"])) == (3, 0, 0, 1)
    # The space between words is a character: deleting or inserting it is an error.
    assert counts(char_errors(["ab cd"], ["abcd"])) == (5, 0, 1, 0)
    assert counts(char_errors(["abcd"], ["ab cd"])) == (4, 1, 0, 0)
    assert counts(char_errors(["ab cd"], ["ab  cd"])) == (5, 0, 0, 0)  # extra whitespace ignored
    report = score({"u": "the cat"}, {"u": "the bat"})
    assert report.cer.kaldi_line("CER") == "%CER 14.29 [ 1 / 7, 0 ins, 0 del, 1 sub ]"


def test_cer_unit_names_cannot_collide_with_characters() -> None:
    """A literal '<', 's', ... in the text is not confused with the space unit."""
    assert counts(char_errors(["a b"], ["a<space>b"])) == (3, 6, 0, 1)


def test_no_normalisation_case_matters() -> None:
    assert counts(word_errors(["Yes"], ["yes"])) == (1, 0, 0, 1)


def test_to_dict() -> None:
    data = score({"a": "x y"}, {"a": "x"}, {"a": "spk"}).to_dict()
    assert data["wer"]["dels"] == 1 and data["wer"]["rate"] == 50.0 and data["wer"]["errors"] == 1
    assert data["ser"] == 100.0
    assert data["per_speaker"]["spk"]["ref_len"] == 2
