"""ROVER word voting (asr.rover) and `asr combine`."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.cli.main import main as asr_main
from asr.rover import align_to_network, combine, combine_positions, combine_words


def _rover(*hyps: str) -> str:
    return " ".join(combine_words([h.split() for h in hyps]))


@pytest.mark.parametrize(
    ("hyps", "expected"),
    [
        (("a b c", "a x c", "a x c"), "a x c"),  # two systems outvote the first
        (("a b c", "a x c", "a y c"), "a b c"),  # three ways: the first system's word
        (("a b", "a z b", "a b"), "a b"),  # one system's insertion is voted out
        (("a b", "a z b", "a z b"), "a z b"),  # and two systems' voted in
        (("a b c", "a c", "a c"), "a c"),  # two deletions win over one word
        (("", "a", "a"), "a"),
        (("a", "", ""), ""),
        (("g n e f", "g n e f", "g n e f"), "g n e f"),
        (("b c d e", "b d e", "b c e"), "b c d e"),  # every word has two votes of three
    ],
)
def test_voting(hyps: tuple[str, ...], expected: str) -> None:
    assert _rover(*hyps) == expected


def test_two_systems_change_nothing() -> None:
    assert _rover("a b c", "x y") == "a b c"
    assert _rover("", "x y") == ""


def test_network_columns_hold_every_system() -> None:
    hyps = [["a", "b"], ["a", "z", "b"], ["b"]]
    network = align_to_network([[(0, 0)], [(0, 1)]], hyps, 1)
    assert network == [[(0, 0), (1, 0)], [None, (1, 1)], [(0, 1), (1, 2)]]
    network = align_to_network(network, hyps, 2)
    assert network == [[(0, 0), (1, 0), None], [None, (1, 1), None], [(0, 1), (1, 2), (2, 0)]]


def test_positions_name_the_earliest_system_of_the_winning_word() -> None:
    # "x" wins with systems 1 and 2: its time comes from system 1, the earliest that said it.
    assert combine_positions([["a", "b"], ["a", "x"], ["q", "a", "x"]]) == [(0, 0), (1, 1)]


def test_an_utterance_missing_from_a_system_counts_as_empty() -> None:
    systems = [{"u1": ["a"], "u2": ["b"]}, {"u1": ["a"], "u2": []}, {"u1": ["a"]}]
    assert combine(systems) == {"u1": ["a"], "u2": []}
    assert list(combine([{"u2": ["x"]}, {"u1": ["y"], "u2": ["x"]}])) == ["u2", "u1"]


def test_cli_writes_a_kaldi_text(tmp_path: Path, capsys) -> None:
    files = []
    for n, lines in enumerate((["u1 A B C", "u2 D"], ["u1 A X C", "u2 E"], ["u1 A X C", "u2"])):
        files.append(tmp_path / f"hyp{n}")
        files[-1].write_text("\n".join(lines) + "\n")
    out = tmp_path / "combined"
    assert asr_main(["combine", *map(str, files), "--out", str(out)]) == 0
    assert out.read_text() == "u1 A X C\nu2 D\n"
    assert "combined 3 systems over 2 utterances" in capsys.readouterr().out
    assert asr_main(["combine", str(files[0]), "--out", str(out)]) == 1
    assert "at least two hypothesis files" in capsys.readouterr().err
    assert asr_main(["combine", str(files[0]), str(tmp_path / "nope"), "--out", str(out)]) == 1
    assert "nope" in capsys.readouterr().err
