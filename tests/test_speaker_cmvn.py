"""Per-speaker CMVN with features computed on the fly: training normalises each utterance with
its speaker's statistics (a speaker's gain disappears), ``asr decode`` decodes speaker by
speaker, and the recognizer adapts to a speaker's audio (``transcribe --one-speaker``)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from faults_utils import SAMPLE_RATE, TEXTS, TINY, spelled, train_args

import asr
from asr.cli import main as asr_main
from asr.cli import transcribe as transcribe_cli
from asr.config import FeatureConfig, load_config
from asr.data import read_data_dir
from asr.decode.decode_dir import decode_data_dir, read_signals
from asr.decode.sweep import compute_posteriors
from asr.features import SpeakerTable, build_frontend, normalize
from asr.rover_model import make_rover
from asr.text import Tokenizer
from asr.train import Trainer
from asr.train.lazy import load_lazy

GAIN = 0.25  # speaker B: speaker A's recordings, this much quieter
UTTS = 6
ON_THE_FLY = ["train.features_on_the_fly=true", "features.cmvn=speaker", "train.epochs=1"]
SPEAKER_CMVN = [*TINY, *ON_THE_FLY]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Speakers A and B saying the same utterances; B's are A's at :data:`GAIN`."""
    root = tmp_path_factory.mktemp("spk") / "data"
    (root / "wav").mkdir(parents=True)
    scp, text, utt2spk = [], [], []
    for speaker, gain in (("spkA", 1.0), ("spkB", GAIN)):
        for i in range(UTTS):
            utt = f"{speaker}-u{i}"
            words = " ".join(TEXTS[i])
            sf.write(root / "wav" / f"{utt}.wav", gain * spelled(TEXTS[i], i), SAMPLE_RATE, subtype="PCM_16")
            scp.append(f"{utt} {root / 'wav' / utt}.wav\n")
            text.append(f"{utt} {words}\n")
            utt2spk.append(f"{utt} {speaker}\n")
    (root / "wav.scp").write_text("".join(scp))
    (root / "text").write_text("".join(text))
    (root / "utt2spk").write_text("".join(utt2spk))
    (root / "spk2utt").write_text("".join(
        f"{s} {' '.join(f'{s}-u{i}' for i in range(UTTS))}\n" for s in ("spkA", "spkB")))
    return root


def test_speaker_table_uses_each_speakers_statistics() -> None:
    table = SpeakerTable({"a1": "A", "a2": "A", "b1": "B"})
    feats = {"a1": torch.full((4, 2), 1.0), "a2": torch.full((4, 2), 3.0), "b1": torch.arange(6.0).reshape(3, 2)}
    for utt, x in feats.items():
        table.add(utt, x)
    table.finish()
    assert table.num_speakers == 2 and table.num_frames == 11
    batch = torch.zeros(2, 4, 2)
    batch[0] = feats["a1"]
    batch[1, :3] = feats["b1"]
    out = table.normalize(batch, torch.tensor([4, 3]), ["a1", "b1"])
    # Speaker A: mean 2, std 1 over a1 and a2, so a1 becomes -1 (within the eps of the std).
    assert torch.allclose(out[0], torch.full((4, 2), -1.0), atol=1e-5)
    b = feats["b1"]
    assert torch.allclose(out[1, :3], (b - b.mean(0)) / b.std(0, unbiased=False), atol=1e-5)
    assert torch.equal(out[1, 3], torch.zeros(2))  # padding stays zero
    with pytest.raises(KeyError, match="no speaker CMVN statistics for speaker 'c1'"):
        table.normalize(batch, torch.tensor([4, 3]), ["a1", "c1"])


def _trainer(corpus: Path, tmp_path: Path, *overrides: str) -> tuple[Trainer, list]:
    config = load_config(None, [*SPEAKER_CMVN, *overrides])
    tokenizer = Tokenizer.build(["a b c"], "char")
    lazy, _ = load_lazy(read_data_dir(corpus), config.features, tokenizer, subsampling=2)
    return Trainer(config, tmp_path / "exp", tokenizer, lazy, [], progress=False), lazy


def test_training_features_lose_the_speakers_gain(corpus: Path, tmp_path: Path, caplog) -> None:
    """Log filterbanks of a recording at gain g are those at gain 1 plus 2 log g in every band,
    so per-speaker normalisation makes B's features A's; global CMVN keeps the offset."""
    trainer, lazy = _trainer(corpus, tmp_path)
    with caplog.at_level("INFO"):
        trainer._compute_speaker_cmvn()
    assert "speaker CMVN from" in caplog.text and "of 2 speakers (12 utterances)" in caplog.text
    feats = dict(trainer._feature_rows(lazy))  # now normalised by speaker
    for speaker in ("spkA", "spkB"):
        frames = torch.cat([feats[f"{speaker}-u{i}"] for i in range(UTTS)])
        # Normalised with its own statistics: zero mean, unit variance (float32 sums of ~1e3
        # frames of values of order 1: far inside 1e-3).
        assert frames.mean(0).abs().max() < 1e-3
        assert (frames.std(0, unbiased=False) - 1).abs().max() < 1e-3
    # 16-bit quantisation of B's quieter files is the only difference: a step of 2^-15 on
    # noise of amplitude 0.0025 moves the quietest bands' log power by about 1e-3, divided by
    # band deviations down to ~0.1 (about 0.01 at most here); the offset removed is
    # 2 log 4 = 2.8 before normalisation, so 0.05 still tells the two apart by 50x.
    for i in range(UTTS):
        assert torch.allclose(feats[f"spkA-u{i}"], feats[f"spkB-u{i}"], atol=0.05)
    plain = build_frontend(trainer.config.features)
    raw_a = plain(torch.from_numpy(spelled(TEXTS[0], 0))[None])[0][0]
    raw_b = plain(torch.from_numpy(GAIN * spelled(TEXTS[0], 0))[None])[0][0]
    assert torch.allclose(raw_b - raw_a, torch.full_like(raw_a, 2 * math.log(GAIN)), atol=1e-2)


def test_speaker_statistics_are_recomputed_on_resume(corpus: Path, tmp_path: Path) -> None:
    """One epoch, then a second one resumed from its checkpoint: the run starts by computing
    the statistics again (they are not part of the training state) and the model trains on."""
    exp = tmp_path / "exp"
    args = train_args(corpus, exp, None, *ON_THE_FLY)
    assert asr_main.main(args) == 0
    assert asr_main.main([*args, "--set", "train.epochs=2"]) == 0
    log = (exp / "train.log").read_text()
    assert log.count("speaker CMVN from") == 2 and "epoch 2:" in log
    config = (exp / "final" / "config.yaml").read_text()
    assert "cmvn: speaker" in config


@pytest.fixture(scope="module")
def model(corpus: Path, tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("spk_model") / "exp"
    assert asr_main.main(train_args(corpus, exp, None, *ON_THE_FLY)) == 0
    return exp / "final"


@pytest.mark.parametrize("path", ["decode", "sweep"])
def test_decode_adapts_to_each_speaker_in_turn(corpus: Path, model: Path, monkeypatch, path: str) -> None:
    """``asr decode`` and the weight sweep's posteriors (``--tune-data``) both run the model
    speaker by speaker, each with its utterances' statistics."""
    recognizer = asr.load_model(model, device="cpu")
    assert recognizer.uses_speaker_cmvn
    _, signals, _ = read_signals(corpus, SAMPLE_RATE)
    calls: list[list[int] | None] = []
    real = recognizer.adapt

    def recorded(signals):
        calls.append(None if signals is None else [len(s) for s in signals])
        real(signals)

    monkeypatch.setattr(recognizer, "adapt", recorded)
    if path == "decode":
        assert len(decode_data_dir(recognizer, corpus).hyps) == 2 * UTTS
    else:
        posteriors = compute_posteriors(recognizer, corpus, batch_size=4)
    assert calls == [[len(signals[f"{s}-u{i}"]) for i in range(UTTS)] for s in ("spkA", "spkB")] + [None]
    assert recognizer.frontend.stats is None  # each input on its own again
    if path == "sweep":  # the posteriors of one speaker's utterance are those after adapting
        real([signals[f"spkB-u{i}"] for i in range(UTTS)])
        alone, _ = recognizer.log_probs([signals["spkB-u2"]])
        assert torch.allclose(posteriors.log_probs["spkB-u2"], alone[0], atol=1e-4)


def test_adapted_recognizer_normalises_with_the_speakers_statistics(corpus: Path, model: Path) -> None:
    recognizer = asr.load_model(model, device="cpu")
    _, signals, _ = read_signals(corpus, SAMPLE_RATE)
    mine = [signals[f"spkB-u{i}"] for i in range(UTTS)]
    inner = recognizer.frontend.inner
    frames = [inner(torch.from_numpy(s)[None])[0][0] for s in mine]
    pooled = torch.cat(frames).double()
    mean, std = pooled.mean(0).float(), torch.sqrt(pooled.var(0, unbiased=False) + 1e-5).float()
    recognizer.adapt(mine)
    got, lengths = recognizer.frontend(torch.from_numpy(mine[0])[None], torch.tensor([len(mine[0])]))
    assert torch.allclose(got[0], normalize(frames[0][None], lengths, mean, std)[0], atol=1e-4)
    # The files of the speaker give the same statistics as their signals.
    stats = recognizer.frontend.stats
    recognizer.adapt_files([corpus / "wav" / f"spkB-u{i}.wav" for i in range(UTTS)] + [corpus / "missing.wav"])
    assert recognizer.frontend.stats.count == stats.count
    assert np.allclose(recognizer.frontend.stats.sum, stats.sum, rtol=1e-9)
    recognizer.adapt(None)
    alone, _ = recognizer.frontend(torch.from_numpy(mine[0])[None], torch.tensor([len(mine[0])]))
    assert not torch.allclose(alone, got, atol=1e-2)  # its own statistics are not the speaker's


def test_transcribe_one_speaker(corpus: Path, model: Path, capsys) -> None:
    files = [str(corpus / "wav" / f"spkB-u{i}.wav") for i in range(UTTS)]
    assert transcribe_cli.main(["--model", str(model), "--one-speaker", "-q", *files]) == 0
    assert len(capsys.readouterr().out.splitlines()) == UTTS
    with pytest.raises(SystemExit) as exc:
        transcribe_cli.main(["--model", str(model), "--one-speaker", "-"])
    assert exc.value.code == 2
    assert "--one-speaker reads the files twice" in capsys.readouterr().err


def test_transcribe_speaker_per_dir(corpus: Path, model: Path, tmp_path: Path, capsys) -> None:
    """Each directory normalised with its own files' statistics, as --one-speaker on it alone;
    the results come out directory by directory."""
    dirs = {}
    for speaker in ("spkA", "spkB"):
        dirs[speaker] = tmp_path / speaker
        dirs[speaker].mkdir()
        for i in range(UTTS):
            shutil.copy(corpus / "wav" / f"{speaker}-u{i}.wav", dirs[speaker])
    alone = {}
    for speaker, folder in dirs.items():
        files = [str(folder / f"{speaker}-u{i}.wav") for i in range(UTTS)]
        assert transcribe_cli.main(["--model", str(model), "--one-speaker", "-q", *files]) == 0
        alone[speaker] = capsys.readouterr().out.splitlines()
    mixed = [str(dirs[s] / f"{s}-u{i}.wav") for i in range(UTTS) for s in ("spkB", "spkA")]
    assert transcribe_cli.main(["--model", str(model), "--speaker-per-dir", "-q", *mixed]) == 0
    assert capsys.readouterr().out.splitlines() == alone["spkB"] + alone["spkA"]
    assert transcribe_cli.main(["--model", str(model), "-q", *mixed[::2]]) == 0
    assert capsys.readouterr().out.splitlines() != alone["spkB"]  # each file on its own differs
    with pytest.raises(SystemExit):
        transcribe_cli.main(["--model", str(model), "--speaker-per-dir", "--one-speaker", *mixed])
    assert "not allowed with argument" in capsys.readouterr().err


def test_global_cmvn_model_ignores_adapt(tmp_path: Path) -> None:
    frontend = build_frontend(FeatureConfig(sample_rate=8000, n_mels=12, cmvn="global"), standalone=True)
    assert not hasattr(frontend, "adapt")


def test_speaker_statistics_skip_inputs_too_short_for_a_frame() -> None:
    """Kaldi fbank frames only whole windows (snip_edges): 10 samples give none."""
    config = FeatureConfig(type="fbank", sample_rate=8000, n_mels=12, cmvn="speaker")
    frontend = build_frontend(config, standalone=True)
    wave = torch.from_numpy(spelled("ab", 0))
    assert frontend.speaker_stats([wave[:10], wave]).count == frontend.speaker_stats([wave]).count > 0
    frontend.adapt(frontend.speaker_stats([wave[:10]]))  # no frames: each input on its own
    assert frontend.stats is None


def test_rover_model_decodes_speaker_by_speaker(corpus: Path, model: Path, tmp_path: Path) -> None:
    """A ROVER model with a per-speaker CMVN system adapts that system to each speaker (and
    leaves none adapted after the data dir), as ``asr decode`` of the system alone does."""
    rover = make_rover(tmp_path / "rover", [model, model, model])
    recognizer = asr.load_model(rover, device="cpu")
    assert recognizer.uses_speaker_cmvn
    alone = decode_data_dir(asr.load_model(model, device="cpu"), corpus)
    combined = decode_data_dir(recognizer, corpus)
    assert combined.hyps == alone.hyps  # three copies of one system vote for its words
    assert all(system.frontend.stats is None for system in recognizer.systems)
    recognizer.adapt_files([corpus / "wav" / f"spkA-u{i}.wav" for i in range(UTTS)])
    assert all(system.frontend.stats.count > 0 for system in recognizer.systems)
