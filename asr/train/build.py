"""The pieces a trainer is made of, built from the config: optimizer, on-device feature
extractor, augmentation, and the DDP / torch.compile wrapping of the model."""

from __future__ import annotations

import torch
from torch import nn

from asr.augment import SpecAugment, WaveformAugment
from asr.config import ExperimentConfig, TrainConfig
from asr.errors import ConfigError
from asr.features import build_frontend


def make_optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if tc.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    if tc.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    return torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay)


def make_frontend(config: ExperimentConfig, on_the_fly: bool, device: torch.device) -> nn.Module | None:
    """The feature extractor run per batch on the device when the examples are waveforms."""
    if not on_the_fly:
        return None
    if config.features.source != "audio":
        raise ConfigError(
            "train.features_on_the_fly: features come from the audio, not from "
            f"features.source: {config.features.source}; set one of them back"
        )
    return build_frontend(config.features).to(device)


def make_augmentation(
    config: ExperimentConfig, on_the_fly: bool
) -> tuple[SpecAugment | None, WaveformAugment | None]:
    """SpecAugment on the normalised features (training mode only), and speed/noise
    perturbation of the waveforms when features are computed on the fly."""
    ac = config.augment
    spec = SpecAugment(ac) if ac.spec_augment else None
    wave = WaveformAugment(ac, config.features.sample_rate, config.train.seed)
    if not wave.active:
        return spec, None
    if not on_the_fly:
        raise ConfigError(
            "augment.speed_perturb / augment.noise_snr_db change the waveform, so they need "
            "train.features_on_the_fly: true (or perturb the data dir: asr data perturb-speed)"
        )
    return spec, wave


def wrap_model(
    model: nn.Module, device: torch.device, distributed: bool, compile_model: bool
) -> tuple[nn.Module, nn.parallel.DistributedDataParallel | None]:
    """The module the training steps call (DDP across ranks, then torch.compile if asked) and
    the DDP wrapper itself (for ``no_sync``), or None."""
    net: nn.Module = model
    ddp_module = None
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        net = ddp_module = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if compile_model:
        net = torch.compile(net, dynamic=True)  # type: ignore[assignment]
    return net, ddp_module
