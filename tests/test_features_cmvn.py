"""CMVN statistics in Kaldi's format (kaldiio round trip), per-speaker normalisation."""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from asr.errors import DataDirError
from asr.features import CmvnStats, group_stats, read_cmvn_stats, write_cmvn_stats
from asr.features.dump import speaker_normalise


def _stats(rng: np.random.Generator, frames: int, dim: int, loc: float = 0.0) -> CmvnStats:
    stats = CmvnStats(dim)
    stats.add(rng.normal(loc, 2.0, size=(frames, dim)))
    return stats


def test_kaldi_matrix_layout() -> None:
    """Row 0: sums then the count; row 1: sums of squares then 0 (compute-cmvn-stats)."""
    feats = np.array([[1.0, 2.0], [3.0, -4.0], [5.0, 6.0]])
    stats = CmvnStats(2)
    stats.add(feats)
    np.testing.assert_array_equal(stats.to_kaldi(), [[9.0, 4.0, 3.0], [35.0, 56.0, 0.0]])
    back = CmvnStats.from_kaldi(stats.to_kaldi())
    assert back.count == 3
    np.testing.assert_array_equal(back.sum, stats.sum)
    np.testing.assert_array_equal(back.sum_sq, stats.sum_sq)
    with pytest.raises(ValueError, match=r"\(2, dim \+ 1\)"):
        CmvnStats.from_kaldi(np.zeros((3, 4)))


def test_cmvn_scp_round_trip_through_kaldiio(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stats = {"spkB": _stats(rng, 50, 4, 1.0), "spkA": _stats(rng, 7, 4, -3.0)}
    ark, scp = tmp_path / "ark" / "cmvn.ark", tmp_path / "cmvn.scp"
    write_cmvn_stats(stats, ark, scp)
    lines = scp.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["spkA", "spkB"]  # C-sorted, like Kaldi
    assert all(line.split()[1].startswith(str(ark.absolute()) + ":") for line in lines)
    # Any kaldiio reader sees Kaldi's (2, dim + 1) float64 matrices ...
    table = kaldiio.load_scp(str(scp))
    for key, st_ in stats.items():
        np.testing.assert_array_equal(table[key], st_.to_kaldi())
        assert table[key].dtype == np.float64
    # ... and ours gives back the same statistics.
    back = read_cmvn_stats(scp)
    assert set(back) == set(stats)
    for key in stats:
        assert back[key].count == stats[key].count
        np.testing.assert_array_equal(back[key].sum_sq, stats[key].sum_sq)
    assert not list(ark.parent.glob(".*tmp"))  # nothing left of the atomic write


@settings(max_examples=25, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 30), st.integers(1, 5)),
              elements=st.floats(-100, 100, width=32)))
def test_round_trip_property(tmp_path_factory, feats: np.ndarray) -> None:
    stats = CmvnStats(feats.shape[1])
    stats.add(feats)
    tmp = tmp_path_factory.mktemp("cmvn")
    write_cmvn_stats({"u": stats}, tmp / "c.ark", tmp / "c.scp")
    back = read_cmvn_stats(tmp / "c.scp")["u"]
    assert back.count == feats.shape[0]
    np.testing.assert_array_equal(back.sum, stats.sum)
    mean, std = back.mean_std()
    np.testing.assert_allclose(mean.numpy(), feats.astype(np.float64).mean(0), rtol=1e-5, atol=1e-4)


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    scp = tmp_path / "cmvn.scp"
    scp.write_text(f"spk {tmp_path / 'missing.ark'}:5\n")
    with pytest.raises(DataDirError, match="cmvn.scp"):
        read_cmvn_stats(scp)


def test_speaker_normalisation_uses_each_speakers_statistics() -> None:
    rng = np.random.default_rng(1)
    feats = {
        "a1": torch.from_numpy(rng.normal(5.0, 3.0, (40, 3)).astype(np.float32)),
        "a2": torch.from_numpy(rng.normal(5.0, 3.0, (20, 3)).astype(np.float32)),
        "b1": torch.from_numpy(rng.normal(-2.0, 0.5, (30, 3)).astype(np.float32)),
    }
    utt2spk = {"a1": "A", "a2": "A", "b1": "B"}
    out = speaker_normalise(feats, utt2spk)
    a = torch.cat([out["a1"], out["a2"]]).double()
    # Stats in float64; (x - mean) / std rounds by ~2 eps (|x| + |mean|) / std <~ 1e-6 per
    # value (|x| <~ 15, std 3; 4 / 0.5 for b1): 1e-5 is >10x over.
    np.testing.assert_allclose(a.mean(0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(a.var(0, unbiased=False).numpy(), 1.0, atol=1e-3)
    # a1 alone is not zero-mean: it was normalised with speaker A's statistics, not its own.
    a_stats = group_stats(feats, utt2spk)["A"]
    assert a_stats.count == 60
    assert torch.allclose(out["a1"], a_stats.apply(feats["a1"]))
    np.testing.assert_allclose(out["b1"].double().mean(0).numpy(), 0.0, atol=1e-5)
    # An utterance without a speaker is its own speaker.
    assert group_stats(feats, {})["b1"].count == 30
