"""N-best rescoring across systems (asr.rescore, asr.rescore_model, `asr rescore`, `asr models
rescore`): words spelled in each model's units, exact CTC likelihoods, the combined choice,
and one model directory that `transcribe` runs as `asr rescore` decodes."""

from __future__ import annotations

import itertools
import json
import logging
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from asr.cli.main import main as asr_main
from asr.cli.transcribe import main as transcribe_main
from asr.data.datadir import write_data_dir
from asr.data.utterance import Utterance
from asr.decode.base import DecoderError
from asr.decode.decode_dir import decode_data_dir
from asr.errors import AsrError, ModelError
from asr.inference import load_model, load_system
from asr.rescore import (
    IMPOSSIBLE,
    MAX_PRONUNCIATIONS,
    Candidates,
    Speller,
    ctc_log_likelihoods,
    score_candidates,
    union,
)
from asr.rescore_model import RescoreRecognizer
from asr.rover_model import ROVER_FILE, make_rover
from asr.text.tokenizer import Tokenizer
from tests.transcribe_utils import make_model_dir, one_thread  # noqa: F401 - fixture

PHONES = Tokenizer(["<blank>", "<unk>", "<space>", "AH", "EY", "B", "IY"], "phone")
LEXICON = {"A": [["AH", "<space>"], ["EY", "<space>"]], "B": [["B", "IY", "<space>"]]}


def ids(*tokens: str) -> list[int]:
    return [PHONES.index[t] for t in tokens]


def test_words_are_spelled_in_each_models_units() -> None:
    speller = Speller(PHONES, LEXICON)
    # Every pronunciation combination; a boundary between words, none after the last.
    assert speller.targets(["B", "A"]) == [ids("B", "IY", "<space>", "AH"), ids("B", "IY", "<space>", "EY")]
    assert speller.targets([]) == [[]]
    assert speller.targets(["B", "Z"]) == []  # a word outside the lexicon: cannot spell it
    many = speller.targets(["A"] * 10)  # 2**10 combinations: the last words keep their first
    assert len(many) == MAX_PRONUNCIATIONS and all(seq[-1] == PHONES.index["AH"] for seq in many)
    chars = Tokenizer.build(["ab ba"])
    assert Speller(chars).targets(["AB", "BA"]) == [chars.encode("AB BA")]
    with pytest.raises(DecoderError, match="phone model needs a lexicon"):
        Speller(PHONES)


def test_ctc_likelihood_is_the_sum_over_every_alignment() -> None:
    torch.manual_seed(0)
    log_probs = torch.randn(5, 4).log_softmax(-1)
    targets = [[1, 2], [1, 1], [3], [], [1, 2, 1, 2]]
    exact = []
    for target in targets:
        total = 0.0
        for path in itertools.product(range(4), repeat=5):
            collapsed = [t for i, t in enumerate(path) if t != 0 and (i == 0 or t != path[i - 1])]
            if collapsed == target:
                total += math.exp(sum(float(log_probs[i, t]) for i, t in enumerate(path)))
        exact.append(math.log(total) if total > 0 else IMPOSSIBLE)
    got = ctc_log_likelihoods(log_probs, targets).tolist()
    # float32 sums of 5 terms of magnitude < 10 against float64: errors near 1e-6.
    assert got[:4] == pytest.approx(exact[:4], abs=1e-4)
    assert got[4] == pytest.approx(exact[4], abs=1e-4)  # 4 labels in 5 frames: few paths
    # A repeated label needs a blank between: [1, 1, 1, 1] needs 7 frames, there are 5.
    assert ctc_log_likelihoods(log_probs, [[1, 1, 1, 1]]).tolist() == [IMPOSSIBLE]
    assert ctc_log_likelihoods(log_probs, [[1, 2, 1, 2, 1, 2]]).tolist() == [IMPOSSIBLE]


def test_the_choice_is_the_mean_of_the_systems_plus_lm_and_word_score() -> None:
    am = np.array([[-1.0, -4.0, -2.0],    # system 1 prefers "a b"
                   [-6.0, -1.0, -2.5]])   # system 2 prefers "a"; "b b" is second for both
    c = Candidates(["a b", "a", "b b"], am, np.array([-3.0, -1.0, -5.0]), [[[]] * 3] * 2)
    assert c.scores(0, 0).tolist() == [-3.5, -2.5, -2.25]
    assert c.best(0, 0) == 2  # neither system's best alone
    assert c.best(1, 0) == 1  # the LM: "a"
    assert c.best(0, 5) == 2  # a word bonus: the two-word candidates, "b b" ahead
    tie = Candidates(["x", "y"], np.array([[-1.0, -1.0]]), np.zeros(2), [[[], []]])
    assert tie.best(0.5, 0) == 0  # a tie goes to the earliest (system 1's best)
    assert union([["a  b", "a"], ["a", "b b"], []]) == ["a b", "a", "b b"]


def test_candidates_are_scored_in_each_systems_own_units() -> None:
    torch.manual_seed(1)
    phone_post = torch.randn(12, len(PHONES)).log_softmax(-1)
    chars = Tokenizer.build(["a b"])
    char_post = torch.randn(12, len(chars)).log_softmax(-1)
    spellers = [Speller(PHONES, LEXICON), Speller(chars)]
    c = score_candidates(["A B", "B", "Z"], [phone_post, char_post], spellers)
    pron = ctc_log_likelihoods(phone_post, Speller(PHONES, LEXICON).targets(["A", "B"]))
    assert c.am[0, 0] == pytest.approx(float(pron.max()))  # the best pronunciation of A
    assert c.targets[0][0] == Speller(PHONES, LEXICON).targets(["A", "B"])[int(pron.argmax())]
    assert c.am[1, 1] == pytest.approx(float(ctc_log_likelihoods(char_post, [chars.encode("B")])[0]))
    assert c.am[0, 2] == IMPOSSIBLE and c.targets[0][2] == []  # Z: not in the phone lexicon
    assert c.lm.tolist() == [0.0, 0.0, 0.0]  # no LM


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    utts = []
    for i, n in enumerate((5000, 8000, 11000, 7000)):
        t = np.arange(n) / 8000
        signal = 0.3 * np.sin(2 * np.pi * (230 + 70 * i) * t) * (rng.random(n) > 0.3)
        signal[n // 3 : n // 2] = 0.0
        path = tmp_path / f"u{i}.wav"
        sf.write(path, signal.astype(np.float32), 8000)
        utts.append(Utterance(f"s{i % 2}-u{i}", str(path), "one two", f"s{i % 2}"))
    return write_data_dir(tmp_path / "data", utts).path


@pytest.fixture
def beam_systems(tmp_path: Path) -> list[Path]:
    systems = []
    for seed in (0, 1, 2):
        model = make_model_dir(tmp_path / f"m{seed}", seed=seed, output_scale=3.0)
        assert asr_main(["models", "set-decoder", str(model), "--decoder", "beam", "--beam-size", "8"]) == 0
        systems.append(model)
    return systems


def test_rescore_decodes_sweeps_and_installs_what_transcribe_runs(
        beam_systems, data_dir: Path, tmp_path: Path, monkeypatch, capsys, one_thread) -> None:  # noqa: F811
    monkeypatch.setenv("ASR_MODEL_DIR", str(tmp_path / "store"))
    texts = tmp_path / "lm.txt"
    texts.write_text("one two\none two three\n")
    lm = tmp_path / "lm.arpa"
    assert asr_main(["lm", "build", "--order", "2", str(texts), "-o", str(lm)]) == 0
    out = tmp_path / "rs"
    models = [arg for m in beam_systems for arg in ("--model", str(m))]
    assert asr_main(["rescore", *models, "--data", str(data_dir), "--out", str(out), "--lm", str(lm),
                     "--nbest", "4", "--lm-weight", "0,1", "--word-score=-1,2",
                     "--tune-data", str(data_dir)]) == 0
    summary = json.loads((out / "score.json").read_text())
    assert summary["rescore"]["nbest"] == 4 and summary["sweep"]["tuned_on"] == str(data_dir)
    assert sorted(p.name for p in (out / "tune").glob("wer_*")) == [
        "wer_0_-1", "wer_0_2", "wer_1_-1", "wer_1_2"]
    hyps = dict(line.split(" ", 1) if " " in line else (line, "")
                for line in (out / "text").read_text().splitlines())
    candidates = json.loads((out / "candidates.json").read_text())
    assert sum(len(ranked) for ranked in candidates.values()) > len(candidates)  # a choice to make
    for utt, ranked in candidates.items():
        assert ranked[0]["text"] == hyps[utt]
        assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
        assert len(ranked[0]["am"]) == 3
        # The score is the mean of the systems plus the chosen weights.
        a, b = summary["rescore"]["lm_weight"], summary["rescore"]["word_score"]
        top = ranked[0]
        assert top["score"] == pytest.approx(np.mean(top["am"]) + a * top["lm"]
                                             + b * len(top["text"].split()), abs=1e-3)
    # The same combination as one model: transcribe gives the same words as asr rescore.
    combined = tmp_path / "combined"
    assert asr_main(["models", "rescore", *map(str, beam_systems), "--out", str(combined),
                     "--from", str(out / "score.json")]) == 0
    spec = yaml.safe_load((combined / ROVER_FILE).read_text())
    assert spec["combine"] == "rescore" and spec["nbest"] == 4 and spec["lm"] == "rescore_lm.arpa"
    recognizer = load_model(combined, device="cpu")
    assert isinstance(recognizer, RescoreRecognizer)
    wavs = [line.split()[1] for line in (data_dir / "wav.scp").read_text().splitlines()]
    got = [r.text for _, r in recognizer.transcribe_files(wavs)]
    utts = [line.split()[0] for line in (data_dir / "wav.scp").read_text().splitlines()]
    assert got == [hyps[u] for u in utts]
    assert decode_data_dir(recognizer, data_dir).hyps == hyps  # as asr benchmark --model runs it
    assert recognizer.transcribe(wavs[2]).text == hyps[utts[2]]
    result = recognizer.transcribe(wavs[1])
    if result.text:
        assert [w.word for w in result.words] == result.text.split()  # timed words
    # Installed and listed; `asr rescore --model NAME` reads its systems and weights.
    assert asr_main(["models", "install", str(combined), "--name", "rs"]) == 0
    capsys.readouterr()
    assert asr_main(["models", "list"]) == 0
    assert "n-best rescoring of 3 systems (4-best + rescore_lm.arpa" in capsys.readouterr().out
    assert asr_main(["rescore", "--model", "rs", "--data", str(data_dir), "--out", str(tmp_path / "rs2")]) == 0
    assert (tmp_path / "rs2" / "text").read_text() == (out / "text").read_text()
    capsys.readouterr()
    assert transcribe_main(["--model", "rs", "--device", "cpu", "-f", "json", wavs[0]]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == hyps[utts[0]]
    assert transcribe_main(["--model", "rs", "--device", "cpu", "--decoder", "beam", wavs[0]]) == 1
    assert "each of its systems decodes with its own search" in capsys.readouterr().err


def test_long_recordings_fall_back_to_voting(beam_systems, tmp_path: Path, caplog, one_thread) -> None:  # noqa: F811
    combined = make_rover(tmp_path / "c", beam_systems, combine="rescore",
                          options={"lm_weight": 0.0, "word_score": 0.0, "nbest": 4})
    recognizer = load_model(combined, device="cpu")
    rng = np.random.default_rng(3)
    t = np.arange(24000) / 8000
    signal = (0.3 * np.sin(2 * np.pi * 300 * t) * (rng.random(t.size) > 0.3)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="asr.rescore_model"):
        long = recognizer.transcribe(signal, 8000, chunk_length=1.0)
    assert "combined by ROVER voting" in caplog.text
    systems = [load_model(s, device="cpu").transcribe(signal, 8000, chunk_length=1.0) for s in beam_systems]
    from asr.rover import combine_words
    assert long.text.split() == combine_words([r.text.split() for r in systems])


def test_bad_combinations_are_refused_with_the_file_named(beam_systems, data_dir: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(ModelError, match="two or more systems"):
        make_rover(tmp_path / "one", beam_systems[:1], combine="rescore")
    with pytest.raises(AsrError, match="missing.arpa"):
        make_rover(tmp_path / "nolm", beam_systems, combine="rescore", lm=tmp_path / "missing.arpa")
    combined = make_rover(tmp_path / "c", beam_systems[:2], combine="rescore",
                          options={"lm_weight": 0.5, "word_score": 0.0, "nbest": 4})
    spec = yaml.safe_load((combined / ROVER_FILE).read_text())
    (combined / ROVER_FILE).write_text(yaml.safe_dump(spec | {"nbest": 0}))
    with pytest.raises(ModelError, match=r"rover.yaml: nbest must be a number of 1 or more"):
        load_model(combined, device="cpu")
    (combined / ROVER_FILE).write_text(yaml.safe_dump(spec | {"lm": "gone.arpa"}))
    with pytest.raises(ModelError, match=r"its LM 'gone.arpa' is not a file of"):
        load_model(combined, device="cpu")
    out = str(tmp_path / "o")
    assert asr_main(["rescore", "--model", str(beam_systems[0]), "--data", str(data_dir), "--out", out]) == 1
    assert "give two or more --model systems" in capsys.readouterr().err
    rover = make_rover(tmp_path / "rover", beam_systems)
    assert asr_main(["rescore", "--model", str(rover), "--data", str(data_dir), "--out", out]) == 1
    assert "is a combination model: give its systems" in capsys.readouterr().err
    # A system searching with a lexicon spells through it (the lexicon its decoder read).
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("ONE o n e <space>\nTWO t w o <space>\n")
    assert asr_main(["models", "set-decoder", str(beam_systems[0]), "--decoder", "lexicon",
                     "--lexicon", str(lexicon)]) == 0
    system = load_system(beam_systems[0], device="cpu")
    speller, tokens = Speller.for_model(system), system.tokenizer
    assert speller.lexicon == {"ONE": [[tokens.index[c] for c in "one"]], "TWO": [[tokens.index[c] for c in "two"]]}
    assert speller.targets(["TWO", "ONE"]) == [tokens.encode("two one")]
    # A phone model without a lexicon cannot spell the other systems' words.
    phone = SimpleNamespace(decoder=None, tokenizer=PHONES, loaded=SimpleNamespace(path=tmp_path / "phone"))
    with pytest.raises(DecoderError, match=r"phone: a phone model needs a lexicon"):
        Speller.for_model(phone)
