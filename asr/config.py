"""Typed experiment configuration: dataclasses <-> YAML, with command-line overrides.

A configuration is built from one or more YAML files merged in order (later files win), then
``section.key=value`` overrides (values parsed as YAML). Unknown sections or keys are errors that
name the file, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from asr.errors import ConfigError
from asr.presets import resolve_config
from asr.utils import atomic_write_text


@dataclass
class FeatureConfig:
    """Front end (see docs/features.md). Frames are ``frame_length_ms`` long every
    ``frame_shift_ms``; ``type`` picks log-mel (librosa-equal), Kaldi fbank or MFCC, or the
    123-dim Graves input (fbank + energy with Δ and ΔΔ)."""

    sample_rate: int = 16000
    n_mels: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    n_fft: int | None = None  # default: the window length rounded up to a power of two
    f_min: float = 0.0
    f_max: float | None = None  # default: sample_rate / 2
    mel_scale: Literal["htk", "slaney"] = "slaney"  # logmel only (Kaldi types: Kaldi's mel)
    mel_norm: Literal["slaney"] | None = "slaney"  # logmel only
    log_floor: float = 1e-10  # logmel only (Kaldi types floor at float epsilon)
    cmvn: Literal["global", "speaker", "utterance", "none"] = "global"
    type: Literal["logmel", "fbank", "mfcc", "graves123"] = "logmel"
    # Kaldi options (fbank, mfcc, graves123), named and defaulted as in compute-fbank-feats.
    dither: float = 0.0  # 0 (not Kaldi's 1.0) so that features are reproducible
    preemphasis: float = 0.97
    window: Literal["povey", "hanning", "hamming", "rectangular", "blackman"] = "povey"
    remove_dc_offset: bool = True
    snip_edges: bool = True
    use_energy: bool | None = None  # None: Kaldi's default (fbank false, mfcc true)
    raw_energy: bool = True
    energy_floor: float = 0.0
    htk_compat: bool = False
    num_ceps: int = 13  # mfcc
    cepstral_lifter: float = 22.0  # mfcc
    delta_order: int = 0  # append Kaldi add-deltas up to this order (graves123: always 2)
    delta_window: int = 2
    source: Literal["audio", "feats.scp"] = "audio"  # feats.scp: training reads dumped features


@dataclass
class ModelConfig:
    """Deep (bidirectional) LSTM acoustic model with a linear CTC output layer."""

    num_layers: int = 3
    hidden_size: int = 250
    bidirectional: bool = True
    dropout: float = 0.0  # between LSTM layers
    frame_stack: int = 1  # stack k frames and keep every k-th: k-fold subsampling
    init: Literal["pytorch", "uniform"] = "pytorch"
    init_scale: float = 0.1  # half-width of the uniform init (Graves et al. 2013: 0.1)
    cell: Literal["lstm", "peephole"] = "lstm"  # lstm: nn.LSTM (cuDNN); peephole: as in the paper
    proj_size: int = 0  # LSTMP: project each layer's output to this size (0: no projection)
    layer_norm: bool = False  # layer norm between LSTM layers
    frontend: Literal["stack", "conv2d"] = "stack"  # how frame_stack-fold subsampling is done
    conv_channels: int = 32  # conv2d front-end only
    # packed: packed sequences (cuDNN's variable-length path); padded: each direction over
    # padded batches, several times faster on CPU; auto: packed on CUDA, padded elsewhere.
    lstm_impl: Literal["auto", "packed", "padded"] = "auto"


@dataclass
class TokenizerConfig:
    """Output units. ``char``: one token per character, ``<space>`` between words;
    ``word``: one token per training word (closed-vocabulary tasks); ``phone``: phones, from
    the text itself or through ``lexicon``; ``bpe``: sentencepiece BPE pieces (asr.text)."""

    type: Literal["char", "word", "phone", "bpe"] = "char"
    lexicon: str | None = None  # phone: CMU-dict style 'WORD PH1 PH2 ...'; None: text is phones
    keep_stress: bool = False  # phone: keep stress digits (AH0); False folds them (AH)
    word_boundary: bool = False  # phone + lexicon: <space> between words (lexicon decoder)
    bpe_vocab_size: int = 500  # bpe: sentencepiece pieces, <unk> included
    units: str | None = None  # file of the output units, one a line (default: the training text's)


@dataclass
class TrainConfig:
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    epochs: int = 20
    max_frames_per_batch: int = 20000  # padded input frames per batch
    max_utts_per_batch: int = 64
    clip_grad_norm: float = 5.0
    lr_schedule: Literal["plateau", "cosine", "constant"] = "plateau"
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many updates
    lr_decay_factor: float = 0.5  # plateau: multiply lr by this when dev loss stops improving
    lr_decay_patience: int = 1  # plateau: epochs without improvement before decaying
    final_lr_ratio: float = 0.02  # cosine: lr at the last update, as a fraction of lr
    early_stop_patience: int = 5  # epochs without dev improvement before stopping (0: never)
    # which dev figure picks best.pt (the exported model) and drives early stopping; CTC's dev
    # loss often rises while its WER still falls, so small models select better on dev_wer
    select_best: Literal["dev_loss", "dev_wer"] = "dev_loss"
    keep_last: int = 3  # epoch checkpoints kept besides best.pt
    # export the mean of the weights of the last N epochs instead of the best epoch (0: off);
    # late epochs of a decayed schedule average into a model that depends less on which single
    # epoch happened to be best on dev
    average_last: int = 0
    seed: int = 0
    device: str = "auto"
    num_threads: int = 0  # torch intra-op threads on CPU; 0: all cores
    max_duration_s: float = 60.0  # longer training utterances are skipped (counted)
    accum_grad: int = 1  # batches whose gradients are summed into one update
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast of the forward pass
    compile: bool = False  # torch.compile the model
    weight_noise: float = 0.0  # std of Gaussian weight noise per update (Graves phase 2: 0.075)
    init_from: str | None = None  # initial weights: a checkpoint, best.pt or a model directory
    checkpoint_every_steps: int = 0  # also checkpoint every N updates mid-epoch (0: epoch ends)
    log_every_steps: int = 50  # TensorBoard scalars of the training steps
    features_on_the_fly: bool = False  # compute features per batch on the device from the audio
    # with features_on_the_fly: decode all training audio into RAM at start-up instead of
    # reading it per batch (from utt2dur metadata, in DataLoader workers)
    preload: bool = False
    num_workers: int = 0  # DataLoader worker processes reading the audio (0: one thread)
    # stream the training set from WebDataset shards of --train (asr data make-shards; a shard
    # directory or its shards.yaml) by rank and DataLoader worker; needs features_on_the_fly
    shards: str | None = None
    shard_buffer: int = 500  # with shards: utterances per worker sorted by length into batches
    cmvn_max_utts: int = 2000  # global CMVN from at most this many training utterances (0: all)
    max_bad_utts: int = 0  # utterances with unreadable audio skipped (listed) before stopping; -1: any
    max_oom_batches: int = 10  # CUDA out-of-memory batches split or skipped before stopping


@dataclass
class AugmentConfig:
    """Training-time augmentation (asr.augment). SpecAugment (Park et al. 2019) acts on the
    normalised features; noise and speed perturbation on the waveform."""

    spec_augment: bool = False
    freq_masks: int = 2  # number of frequency masks
    freq_mask_width: int = 27  # F: each mask covers 0..F feature channels
    time_masks: int = 2  # number of time masks
    time_mask_width: int = 40  # T: each mask covers 0..T frames
    time_mask_ratio: float = 1.0  # p: a time mask covers at most this fraction of the frames
    time_warp: int = 0  # W: warp the time axis by up to W frames (0: off)
    mask_value: Literal["zero", "mean"] = "zero"  # zero: the mean after CMVN
    noise_snr_db: float | None = None  # add noise at this SNR in dB (None: off)
    noise_prob: float = 0.5  # fraction of utterances that get noise
    noise_source: str | None = None  # noise recordings: a directory or a list file; None: white
    speed_perturb: bool = False  # on-the-fly speed 0.9/1.0/1.1 (as perturb_data_dir_speed.sh)


@dataclass
class ExperimentConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_type(value: Any, annotation: Any, where: str) -> Any:
    """Validate (and gently coerce int -> float) one value against a field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} is not a valid value ({annotation})")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    if origin is Literal:
        if value in typing.get_args(annotation):
            return value
        raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(annotation))}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads '1e-3' (no dot) as a string; accept any numeric spelling.
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported type {annotation}")


def _section_types(section_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(section_cls)


def _apply(config: ExperimentConfig, data: dict[str, Any], source: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    sections = {f.name: f for f in dataclasses.fields(config)}
    for section_name, values in data.items():
        if section_name not in sections:
            raise ConfigError(
                f"{source}: unknown section '{section_name}' (expected one of {sorted(sections)})"
            )
        section = getattr(config, section_name)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section '{section_name}' must be a mapping")
        hints = _section_types(type(section))
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(
                    f"{source}: unknown key '{section_name}.{key}' "
                    f"(expected one of {sorted(hints)})"
                )
            checked = _check_type(value, hints[key], f"{source}: {section_name}.{key}")
            setattr(section, key, checked)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}".replace("\n", " ")) from None
    return data or {}


def parse_override(override: str) -> dict[str, Any]:
    """``model.hidden_size=128`` -> ``{"model": {"hidden_size": 128}}`` (value parsed as YAML)."""
    key, sep, raw = override.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"override '{override}': expected section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return {parts[0]: {parts[1]: value}}


def load_config(
    paths: list[str | Path] | None = None, overrides: list[str] | None = None
) -> ExperimentConfig:
    """Defaults, then each YAML file (a path, or a preset name such as ``model/ctc_5l_250h``:
    :func:`asr.presets.resolve_config`) in order, then each ``section.key=value`` override."""
    config = ExperimentConfig()
    for path in paths or []:
        _apply(config, load_yaml(resolve_config(path)), str(path))
    for override in overrides or []:
        _apply(config, parse_override(override), f"override '{override}'")
    return config


def config_from_dict(data: dict[str, Any], source: str) -> ExperimentConfig:
    config = ExperimentConfig()
    _apply(config, data, source)
    return config


def save_config(config: ExperimentConfig, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    data = dict(extra or {})
    data.update(config.to_dict())
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
