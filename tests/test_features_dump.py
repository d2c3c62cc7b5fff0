"""``asr data compute-features``: feats.scp/ark that kaldiio (and Kaldi) read, equal to the
features computed on the fly; training reads the dump; stale dumps are refused."""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from fp_bounds import kaldi_reference

from asr.cli.main import main
from asr.config import FeatureConfig, load_config
from asr.data import read_data_dir
from asr.data.dataset import load_examples
from asr.errors import DataDirError
from asr.features import build_frontend, group_stats, read_cmvn_stats
from asr.features.dump import compute_features, read_feats_scp, split_jobs
from asr.text import Tokenizer

FILES = {
    "george-0_george_0": ("george", "0_george_0.wav", "zero"),
    "george-1_george_3": ("george", "1_george_3.wav", "one"),
    "jackson-2_jackson_1": ("jackson", "2_jackson_1.wav", "two"),
    "jackson-5_jackson_4": ("jackson", "5_jackson_4.wav", "five"),
    "theo-9_theo_2": ("theo", "9_theo_2.wav", "nine"),
}
SETTINGS = ["features.sample_rate=8000", "features.n_mels=23", "features.type=fbank",
            "features.use_energy=true", "features.f_min=20"]


@pytest.fixture
def data_dir(tmp_path: Path, fsdd_recordings: Path) -> Path:
    d = tmp_path / "data" / "train"
    d.mkdir(parents=True)
    ids = sorted(FILES)
    (d / "wav.scp").write_text("".join(f"{u} {fsdd_recordings / FILES[u][1]}\n" for u in ids))
    (d / "text").write_text("".join(f"{u} {FILES[u][2]}\n" for u in ids))
    (d / "utt2spk").write_text("".join(f"{u} {FILES[u][0]}\n" for u in ids))
    return d


def _config() -> FeatureConfig:
    return load_config(overrides=SETTINGS).features


def _bound(samples: np.ndarray) -> np.ndarray:
    """Twice the per-element float32 bound of SETTINGS' fbank (fp_bounds): the dump batches
    utterances, on other threads, and each path is within the bound of the float64 reference."""
    return 2 * kaldi_reference("fbank", samples, 8000, num_mel_bins=23, low_freq=20.0, use_energy=True)[1]


def test_split_jobs_like_split_data() -> None:
    assert split_jobs(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split_jobs([1], 1) == [[1]]


def test_cli_dump_equals_on_the_fly_features(data_dir: Path, fsdd_recordings: Path, capsys) -> None:
    argv = ["data", "compute-features", str(data_dir), "--nj", "2", "--cmvn", "speaker"]
    for setting in SETTINGS:
        argv += ["--set", setting]
    assert main(argv) == 0
    assert "5 utterances" in capsys.readouterr().out
    config = _config()
    frontend = build_frontend(config)
    table = kaldiio.load_scp(str(data_dir / "feats.scp"))
    assert list(table) == sorted(FILES)
    frames = dict(line.split() for line in (data_dir / "utt2num_frames").read_text().splitlines())
    arks = {line.split()[1].rsplit(":", 1)[0] for line in (data_dir / "feats.scp").read_text().splitlines()}
    assert len(arks) == 2 and all(Path(a).is_absolute() and Path(a).is_file() for a in arks)
    for utt, (_, name, _) in FILES.items():
        samples, _ = sf.read(fsdd_recordings / name, dtype="float32")
        expected, n = frontend(torch.from_numpy(samples))
        dumped = table[utt]
        assert dumped.dtype == np.float32 and dumped.shape == (n.item(), 24)
        assert (np.abs(dumped - expected[0].numpy()) <= _bound(samples)).all(), utt
        assert int(frames[utt]) == n.item()
    assert (data_dir / "frame_shift").read_text().strip() == "0.01"
    info = yaml.safe_load((data_dir / "feats.yaml").read_text())
    assert info["features"]["type"] == "fbank" and info["cmvn"] == "speaker"
    # Kaldi CMVN statistics keyed by speaker, equal to the statistics of the dumped features.
    stats = read_cmvn_stats(data_dir / "cmvn.scp")
    assert sorted(stats) == ["george", "jackson", "theo"]
    utt2spk = {u: FILES[u][0] for u in FILES}
    expected_stats = group_stats({u: table[u] for u in FILES}, utt2spk)
    for spk, st in stats.items():
        assert st.count == expected_stats[spk].count
        # The same float32 values summed in float64 in another order: ~1e-16 relative (the
        # log-fbank values are all of one sign, so no cancellation); 1e-6 is generous.
        np.testing.assert_allclose(st.sum, expected_stats[spk].sum, rtol=1e-6)


def test_training_reads_the_dump(data_dir: Path) -> None:
    config = _config()
    compute_features(data_dir, config)
    data = read_data_dir(data_dir)
    tokenizer = Tokenizer.build((u.text for u in data.utterances), "char")
    on_the_fly, _ = load_examples(data, build_frontend(config), tokenizer)
    config.source = "feats.scp"
    dumped, report = load_examples(data, build_frontend(config), tokenizer)
    assert report.total == 0 and [e.utt_id for e in dumped] == [e.utt_id for e in on_the_fly]
    wavs = {u.utt_id: u for u in data.utterances}
    for a, b in zip(dumped, on_the_fly, strict=True):
        samples, _ = sf.read(wavs[a.utt_id].wav, dtype="float32")
        assert ((a.feats - b.feats).abs().numpy() <= _bound(samples)).all(), a.utt_id
        assert a.duration == pytest.approx(b.duration, abs=0.03)  # frames x shift vs samples


def test_speaker_cmvn_in_load_examples(data_dir: Path) -> None:
    config = _config()
    config.cmvn = "speaker"
    data = read_data_dir(data_dir)
    tokenizer = Tokenizer.build((u.text for u in data.utterances), "char")
    examples, _ = load_examples(data, build_frontend(config), tokenizer)
    jackson = torch.cat([e.feats for e in examples if e.speaker == "jackson"]).double()
    # (x - mean) / std in float32 with float32-rounded stats: ~2 eps |x| / std ~ 1e-6 per
    # value (|x| <~ 25, std >~ 1); 1e-4 is ~100x over, a missing or per-utterance CMVN is >= 0.1 off.
    np.testing.assert_allclose(jackson.mean(0).numpy(), 0.0, atol=1e-4)


def test_stale_or_missing_dump_is_refused(data_dir: Path) -> None:
    config = _config()
    config.source = "feats.scp"
    with pytest.raises(DataDirError, match="compute-features"):
        read_feats_scp(data_dir, config)
    compute_features(data_dir, _config())
    other = _config()
    other.n_mels = 40
    with pytest.raises(DataDirError, match=r"feats.yaml: features were dumped with n_mels=23"):
        read_feats_scp(data_dir, other)
    (data_dir / "feats.yaml").unlink()  # a dump from elsewhere: only the dimension is checked
    with pytest.raises(DataDirError, match="24 dims but the config gives 41"):
        read_feats_scp(data_dir, other)


def test_unreadable_audio_is_skipped_and_reported(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_text("<html>not found</html>")
    lines = (data_dir / "wav.scp").read_text().splitlines()
    lines[1] = lines[1].split()[0] + f" {bad}"
    (data_dir / "wav.scp").write_text("\n".join(lines) + "\n")
    report = compute_features(data_dir, _config())
    assert report.utterances == 4
    assert report.failed[0][0] == "george-1_george_3" and "HTML" in report.failed[0][1]
    assert "george-1_george_3" not in kaldiio.load_scp(str(data_dir / "feats.scp"))
