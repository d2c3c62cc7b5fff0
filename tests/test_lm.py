"""asr.lm: ARPA reading and back-off queries, the built-in Kneser-Ney estimator (checked in
KenLM itself, through flashlight-text, and against lmplz when it is installed), ``asr lm``."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.cli import main as asr_main
from asr.lm import LMError, char_units, estimate_kneser_ney, format_arpa, read_arpa
from asr.lm.kenlm import have_kenlm

# A hand-written trigram model: every back-off path is exercised by the queries below.
ARPA = """
\\data\\
ngram 1=5
ngram 2=4
ngram 3=2

\\1-grams:
-1.0\t<unk>
-99\t<s>\t-0.5
-0.6\t</s>
-0.4\ta\t-0.3
-0.7\tb\t-0.2

\\2-grams:
-0.2\t<s> a\t-0.1
-0.3\ta b\t-0.25
-0.5\tb </s>
-0.4\tb a

\\3-grams:
-0.1\t<s> a b
-0.05\ta b </s>

\\end\\
"""


@pytest.fixture
def arpa(tmp_path: Path) -> Path:
    path = tmp_path / "lm.arpa"
    path.write_text(ARPA)
    return path


def test_backoff_queries(arpa: Path) -> None:
    lm = read_arpa(arpa)
    ids = lm.index
    s, a, b, end = ids["<s>"], ids["a"], ids["b"], ids["</s>"]
    assert lm.order == 3
    assert lm.log10_prob([s, a], b) == pytest.approx(-0.1)  # explicit trigram
    assert lm.log10_prob([b, a], b) == pytest.approx(-0.3)  # (b a) has no bow: bigram a b
    assert lm.log10_prob([s, a], a) == pytest.approx(-0.1 - 0.3 - 0.4)  # bow(<s> a) + bow(a) + p(a)
    assert lm.log10_prob([a], end) == pytest.approx(-0.3 - 0.6)
    assert lm.log10_prob([a, b], end) == pytest.approx(-0.05)
    assert lm.log10_prob([a, b], a) == pytest.approx(-0.25 - 0.4)  # bow(a b) + p(b a)
    assert lm.log10_prob([a, b], b) == pytest.approx(-0.25 - 0.2 - 0.7)  # bow(a b) + bow(b) + p(b)
    assert lm.sentence_log10(["a", "b"]) == pytest.approx(-0.2 - 0.1 - 0.05)
    assert lm.sentence_log10(["zzz"]) == pytest.approx(lm.log10_prob([s], ids["<unk>"]) + lm.log10_prob([ids["<unk>"]], end))


def test_next_distribution_matches_single_queries(arpa: Path) -> None:
    lm = read_arpa(arpa)
    for context in [(), (lm.index["<s>"],), (lm.index["a"],), (lm.index["<s>"], lm.index["a"]),
                    (lm.index["b"], lm.index["a"]), (lm.index["a"], lm.index["b"])]:
        dist = lm.next_log10(context)
        for w in range(len(lm.vocab)):
            assert dist[w] == pytest.approx(lm.log10_prob(context, w)), (context, lm.vocab[w])


def test_format_roundtrip(arpa: Path, tmp_path: Path) -> None:
    lm = read_arpa(arpa)
    again = tmp_path / "again.arpa"
    again.write_text(format_arpa(lm))
    lm2 = read_arpa(again)
    assert lm2.vocab == lm.vocab and lm2.probs == lm.probs and lm2.bows == lm.bows


@pytest.mark.parametrize("text, message", [
    ("nothing here", "no \\\\data\\\\ header"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1 a\n\\end\\\n", "announces 2 1-grams, the file has 1"),
    ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1 a b c d\n\\end\\\n", ":5: a 1-gram line needs"),
    ("\\data\\\nngram 1=1\n\n\\1-grams:\nx </s>\n\\end\\\n", ":5: probabilities must be numbers"),
    ("\\data\\\nngram 1=1\nngram 2=1\n\n\\1-grams:\n-1 </s>\n\\2-grams:\n-1 </s> q\n\\end\\\n",
     ":8: word 'q' has no unigram"),
    ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1 </s>\n", "missing \\\\end\\\\"),
])
def test_malformed_arpa_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(LMError, match=message) as info:
        read_arpa(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_binary_file_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "lm.bin"
    path.write_bytes(b"mmap lm \xff\xfe\x00\x01")
    with pytest.raises(LMError, match="lexicon decoder"):
        read_arpa(path)


CORPUS = [s.split() for s in [
    "one two three", "two three four", "one two", "three four one two", "four four two",
    "one three", "two one four three", "three", "four one", "two two one three",
] * 3]


def kenlm_model(path: Path):
    """The ARPA file loaded by KenLM (inside flashlight-text) and its word dictionary."""
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    lm = read_arpa(path)
    words = Dictionary()
    for w in lm.vocab:
        words.add_entry(w)
    return KenLM(str(path), words), words, lm


def kenlm_log10(model, words, sentence: list[str], eos: bool = False) -> list[float]:
    state = model.start(False)
    scores = []
    for w in sentence:
        state, score = model.score(state, words.get_index(w))
        scores.append(score)
    if eos:
        scores.append(model.finish(state)[1])
    return scores


@pytest.mark.parametrize("order", [2, 3, 4])  # KenLM loads bigram models and up
def test_builtin_estimate_is_a_proper_model_in_kenlm(tmp_path: Path, order: int) -> None:
    path = tmp_path / "kn.arpa"
    path.write_text(format_arpa(estimate_kneser_ney(CORPUS, order)))
    model, words, ours = kenlm_model(path)
    predicted = [w for w in ours.vocab if w != "<s>"]
    # KenLM agrees with our own queries, and P(. | history) sums to one for every history.
    for history in ([], ["one"], ["one", "two"], ["four", "four"], ["two", "one", "four"], ["three", "<unk>"]):
        ids = ours.ids(history)
        total = 0.0
        for w in predicted:
            if w == "</s>":
                got = kenlm_log10(model, words, history, eos=True)[-1]
            else:
                got = kenlm_log10(model, words, [*history, w])[-1]
            expected = ours.log10_prob([ours.bos, *ids], ours.index[w])
            assert got == pytest.approx(expected, abs=2e-6), (history, w)
            total += 10**got
        assert total == pytest.approx(1.0, abs=1e-5), history


def test_discounts_fall_back_on_tiny_corpora() -> None:
    lm = estimate_kneser_ney([["a", "b"]], 2)
    # One sentence: every adjusted count is 1; the fallback discounts (0.5, 1, 1.5) apply.
    # p(b | a) = (1 - 0.5) / 1 + 0.5 * p(b), p(b) = (1 - 0.5) / 3 + (1.5 / 3) / 4 (a, b, </s>, <unk>)
    p_b = 0.5 / 3 + 0.5 / 4
    assert 10 ** lm.log10_prob([lm.index["a"]], lm.index["b"]) == pytest.approx(0.5 + 0.5 * p_b)
    assert 10 ** lm.log10_prob([], lm.index["<unk>"]) == pytest.approx(0.5 / 4)


def lmplz_with_discounts(corpus: Path, order: int, arpa: Path) -> dict[int, tuple[float, ...]]:
    """Run lmplz and read the discounts it prints (``N COUNT D1=.. D2=.. D3+=..``)."""
    import re
    import subprocess

    from asr.lm.kenlm import find_tool

    with open(corpus, "rb") as stdin, open(arpa, "wb") as stdout:
        proc = subprocess.run([str(find_tool("lmplz")), "-o", str(order), "-S", "64M",
                               "--discount_fallback"], stdin=stdin, stdout=stdout,
                              stderr=subprocess.PIPE, text=False, check=True)
    stats = re.findall(r"^(\d+) \d+ D1=(\S+) D2=(\S+) D3\+=(\S+)$",
                       proc.stderr.decode(), flags=re.MULTILINE)
    return {int(n): tuple(float(d) for d in ds) for n, *ds in stats}


@pytest.mark.skipif(not have_kenlm(), reason="KenLM's lmplz is not installed (tools/install_kenlm.sh)")
@pytest.mark.parametrize("order", [2, 3, 4])
def test_builtin_estimate_matches_lmplz(tmp_path: Path, order: int) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(" ".join(s) + "\n" for s in CORPUS))
    discounts = lmplz_with_discounts(corpus, order, tmp_path / "kenlm.arpa")
    assert sorted(discounts) == list(range(1, order + 1))
    theirs = read_arpa(tmp_path / "kenlm.arpa")
    # Given lmplz's discounts (see asr.lm.estimate on how its own can differ), every
    # probability and back-off weight is lmplz's.
    ours = estimate_kneser_ney(CORPUS, order, discounts)
    for n, table in enumerate(theirs.probs):
        assert len(table) == len(ours.probs[n])
        for gram, p in table.items():
            words = [theirs.vocab[i] for i in gram]
            mine = tuple(ours.index[w] for w in words)
            if words[-1] != "<s>":
                assert ours.probs[n][mine] == pytest.approx(p, abs=2e-6), words
            assert ours.bows.get(mine, 0.0) == pytest.approx(theirs.bows.get(gram, 0.0), abs=2e-6), words


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcd"), min_size=0, max_size=6), min_size=1, max_size=12),
       st.integers(1, 4))
def test_builtin_estimate_normalises(sentences: list[list[str]], order: int) -> None:
    lm = estimate_kneser_ney(sentences, order)
    predicted = np.array([i for i, w in enumerate(lm.vocab) if w != "<s>"])
    for history in ([], ["a"], ["b", "a"], ["c", "d", "a"]):
        ids = [lm.bos, *lm.ids(history)]
        total = float((10 ** lm.next_log10(ids)[predicted]).sum())
        assert total == pytest.approx(1.0, abs=1e-9)


def test_char_units() -> None:
    assert char_units(["ab", "c"]) == ["a", "b", "<space>", "c"]


def test_lm_build_cli_builtin_char_and_lexicon(tmp_path: Path, capsys) -> None:
    text = tmp_path / "text"
    text.write_text("u1 one two\nu2 two one\nu3 one\n")
    out = tmp_path / "lm.arpa"
    assert asr_main.main(["lm", "build", "--estimator", "builtin", "--order", "2", "--kaldi",
                          str(text), "-o", str(out)]) == 0
    lm = read_arpa(out)
    assert set(lm.vocab) == {"<unk>", "<s>", "</s>", "one", "two"}
    char = tmp_path / "char.arpa"
    assert asr_main.main(["lm", "build", "--estimator", "builtin", "--unit", "char", "--kaldi",
                          str(text), "-o", str(char)]) == 0
    assert {"o", "n", "e", "t", "w", "<space>"} <= set(read_arpa(char).vocab)
    lexicon = tmp_path / "lexicon.txt"
    assert asr_main.main(["lm", "lexicon", "--kaldi", str(text), "-o", str(lexicon)]) == 0
    assert lexicon.read_text() == "one o n e <space>\ntwo t w o <space>\n"


def test_lm_build_cli_errors(tmp_path: Path, capsys, monkeypatch) -> None:
    assert asr_main.main(["lm", "build", str(tmp_path / "none.txt"), "-o", str(tmp_path / "x.arpa")]) == 1
    assert "none.txt: text file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("a b\n<s> c\n")
    assert asr_main.main(["lm", "build", "--estimator", "builtin", str(bad), "-o", str(tmp_path / "x.arpa")]) == 1
    assert "bad.txt:2: <s> in the text" in capsys.readouterr().err
    # Without KenLM's programs, asking for them says how to get them.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("asr.lm.kenlm.find_tool", lambda name: None)
    good = tmp_path / "good.txt"
    good.write_text("a b\n")
    assert asr_main.main(["lm", "build", "--estimator", "kenlm", str(good), "-o", str(tmp_path / "y.arpa")]) == 1
    assert "tools/install_kenlm.sh" in capsys.readouterr().err
    assert asr_main.main(["lm", "build", "--binary", str(good), "-o", str(tmp_path / "z.arpa")]) == 1
    assert "build_binary is not installed" in capsys.readouterr().err


@pytest.mark.skipif(not have_kenlm(), reason="KenLM is not installed (tools/install_kenlm.sh)")
def test_lm_build_cli_kenlm_binary(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("".join(" ".join(s) + "\n" for s in CORPUS))
    out = tmp_path / "lm.arpa"
    assert asr_main.main(["lm", "build", "--estimator", "kenlm", "--order", "3", "--binary",
                          str(text), "-o", str(out)]) == 0
    binary = tmp_path / "lm.bin"
    assert binary.is_file() and binary.read_bytes()[:4] != b"\\dat"
    # The binary loads in KenLM and scores as the ARPA does.
    from flashlight.lib.text.decoder.kenlm import KenLM

    _, words, ours = kenlm_model(out)
    model = KenLM(str(binary), words)
    got = kenlm_log10(model, words, ["one", "two", "three"], eos=True)
    assert sum(got) == pytest.approx(ours.sentence_log10(["one", "two", "three"]), abs=1e-4)


def test_install_kenlm_script_is_idempotent_when_installed(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "tools" / "install_kenlm.sh"
    assert script.is_file()
    if shutil.which("bash") is None or not have_kenlm():
        pytest.skip("KenLM is not installed here; the script's build path is exercised by hand")
    import subprocess
    import sys

    venv = Path(sys.executable).parent.parent
    proc = subprocess.run(["bash", str(script), "--venv", str(venv)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "already in" in proc.stdout


def test_natural_log_conversion_constant() -> None:
    from asr.lm.arpa import LN10

    assert LN10 == pytest.approx(math.log(10))
