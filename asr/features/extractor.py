"""One entry point from a :class:`FeatureConfig` to the feature extractor it describes.

Every extractor is an ``nn.Module`` with ``forward(waveforms (batch, samples), lengths
(batch,)) -> (feats (batch, frames, dim), frame_lengths (batch,))`` and the attributes
``config``, ``dim``, ``hop_length`` and ``num_frames(num_samples)``.

=============  ========================================================  =====================
type           what                                                      dim
=============  ========================================================  =====================
``logmel``     librosa-equal log-mel (:class:`LogMel`)                   ``n_mels``
``fbank``      Kaldi ``compute-fbank-feats`` (:class:`KaldiFbank`)       ``n_mels`` (+1 energy)
``mfcc``       Kaldi ``compute-mfcc-feats`` (:class:`KaldiMfcc`)         ``num_ceps``
``graves123``  Kaldi fbank + energy with Δ and ΔΔ (Graves et al. 2013)   ``3 * (n_mels + 1)``
=============  ========================================================  =====================

``delta_order`` > 0 appends Kaldi deltas to ``logmel``, ``fbank`` and ``mfcc`` (``graves123``
always has order 2).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from asr.config import FeatureConfig
from asr.errors import ConfigError
from asr.features.cmvn import CmvnStats, normalize, utterance_cmvn
from asr.features.deltas import Deltas
from asr.features.kaldi import KaldiFbank, KaldiMfcc
from asr.features.logmel import LogMel
from asr.features.wrapper import ExtractorWrapper

FEATURE_TYPES = ("logmel", "fbank", "mfcc", "graves123")
GRAVES_DELTA_ORDER = 2


def _base_dim(config: FeatureConfig) -> int:
    if config.type == "logmel":
        return config.n_mels
    if config.type == "fbank":
        return config.n_mels + int(bool(config.use_energy))
    if config.type == "mfcc":
        return config.num_ceps
    if config.type == "graves123":
        return config.n_mels + 1
    raise ConfigError(
        f"features.type: unknown feature type {config.type!r}; use one of {', '.join(FEATURE_TYPES)}"
    )


def delta_order(config: FeatureConfig) -> int:
    """The Δ order the config asks for (graves123: 2)."""
    if config.type == "graves123":
        if config.delta_order not in (0, GRAVES_DELTA_ORDER):
            raise ConfigError(
                f"features.delta_order: graves123 always has Δ and ΔΔ (order 2), got "
                f"{config.delta_order}; use type fbank for other orders"
            )
        return GRAVES_DELTA_ORDER
    if config.delta_order < 0:
        raise ConfigError(f"features.delta_order: {config.delta_order} must be 0 or more")
    return config.delta_order


def feature_dim(config: FeatureConfig) -> int:
    """Feature dimension the config produces (without building the extractor)."""
    return _base_dim(config) * (delta_order(config) + 1)


class SpeakerCmvn(ExtractorWrapper):
    """Wrap an extractor and normalise its output with a speaker's statistics (models trained
    with ``cmvn: speaker``): those set by :meth:`adapt`, from the speaker's own audio; with none
    set, each input is its own speaker (a lone recording, per-utterance statistics)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__(inner)
        self.stats: CmvnStats | None = None
        self._mean_std: tuple[torch.Tensor, torch.Tensor] | None = None  # of stats

    @torch.no_grad()
    def speaker_stats(self, signals: Iterable[torch.Tensor]) -> CmvnStats:
        """Statistics of the features of ``signals`` (1-D waveforms of one speaker); one too
        short for a frame adds nothing."""
        stats = CmvnStats(self.dim)
        for signal in signals:
            lengths = torch.tensor([signal.shape[-1]], device=signal.device)
            if int(self.inner.num_frames(lengths)[0]) < 1:
                continue
            feats, frames = self.inner(signal.reshape(1, -1), lengths)
            stats.add(feats[0, : int(frames[0])].cpu())
        return stats

    def adapt(self, stats: CmvnStats | None) -> None:
        """Normalise with ``stats`` from now on (None: each input on its own again)."""
        self.stats = stats if stats is not None and stats.count > 0 else None
        self._mean_std = self.stats.mean_std() if self.stats is not None else None

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, out_lengths = self.inner(waveforms, lengths)
        if self._mean_std is None:
            return utterance_cmvn(feats, out_lengths), out_lengths
        return normalize(feats, out_lengths, *self._mean_std), out_lengths


def build_frontend(config: FeatureConfig, standalone: bool = False) -> nn.Module:
    """The feature extractor for ``config`` (see the module's table).

    ``standalone``: the extractor feeds a model directly, with no data directory around it
    (``transcribe``, :class:`asr.inference.Recognizer`); with ``cmvn: speaker`` it normalises
    with the statistics given to its :class:`SpeakerCmvn` (each input on its own by default).
    Errors in the config raise :class:`ConfigError`.
    """
    order = delta_order(config)
    _base_dim(config)
    try:
        if config.type == "logmel":
            extractor: nn.Module = LogMel(config)
        elif config.type == "fbank":
            extractor = KaldiFbank(config)
        elif config.type == "mfcc":
            extractor = KaldiMfcc(config)
        else:
            extractor = KaldiFbank(config, use_energy=True)
    except ValueError as exc:
        raise ConfigError(f"features: {exc}") from None
    if order > 0:
        extractor = Deltas(extractor, order, config.delta_window)
    if standalone and config.cmvn == "speaker":
        extractor = SpeakerCmvn(extractor)
    return extractor
