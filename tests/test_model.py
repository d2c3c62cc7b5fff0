"""asr.model: batch independence through packed sequences, shapes, init, parameter count."""

from __future__ import annotations

import pytest
import torch

from asr.config import FeatureConfig, ModelConfig
from asr.model import AcousticModel, build_model, count_parameters, stack_frames

FEAT_DIM = 5
NUM_TOKENS = 7


def _tiny(frame_stack: int = 1, cmvn: str = "global", **kwargs) -> AcousticModel:
    torch.manual_seed(0)
    config = ModelConfig(num_layers=2, hidden_size=8, frame_stack=frame_stack, **kwargs)
    model = AcousticModel(config, FEAT_DIM, NUM_TOKENS, cmvn=cmvn).eval()
    # Non-trivial global statistics, so that padding frames do not stay zero after CMVN.
    model.normalizer.set_stats(
        torch.linspace(-2.0, 3.0, FEAT_DIM), torch.linspace(0.5, 2.0, FEAT_DIM)
    )
    return model


def _padded_batch(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    feats = torch.zeros(len(lengths), max(lengths), FEAT_DIM)
    for i, length in enumerate(lengths):
        feats[i, :length] = torch.randn(length, FEAT_DIM, generator=generator) * 2 + 1
    return feats, torch.tensor(lengths)


@pytest.mark.parametrize("frame_stack", [1, 3])
@pytest.mark.parametrize("cmvn", ["global", "utterance", "none"])
def test_padded_batch_equals_each_utterance_alone(frame_stack: int, cmvn: str) -> None:
    """Each utterance's log-probs in a padded batch equal its lone log-probs within 1e-5."""
    model = _tiny(frame_stack, cmvn)
    lengths = [13, 10, 4, 7, 1]  # unsorted, several not multiples of 3
    feats, lens = _padded_batch(lengths)
    with torch.no_grad():
        log_probs, out_lengths = model(feats, lens)
        for i, length in enumerate(lengths):
            alone, alone_len = model(feats[i : i + 1, :length], lens[i : i + 1])
            assert out_lengths[i] == alone_len[0] == alone.shape[1]
            diff = (log_probs[i, : out_lengths[i]] - alone[0]).abs().max().item()
            assert diff <= 1e-5, f"utterance {i} (length {length}) differs by {diff}"


@pytest.mark.parametrize("frame_stack", [1, 2, 3])
def test_output_shapes_and_lengths(frame_stack: int) -> None:
    model = _tiny(frame_stack)
    lengths = [13, 10, 4]
    feats, lens = _padded_batch(lengths)
    with torch.no_grad():
        log_probs, out_lengths = model(feats, lens)
    expected = [-(-n // frame_stack) for n in lengths]
    assert out_lengths.tolist() == expected
    assert model.output_lengths(lens).tolist() == expected
    assert log_probs.shape == (3, -(-13 // frame_stack), NUM_TOKENS)
    assert model.subsampling == frame_stack


def test_log_probs_normalised() -> None:
    model = _tiny(1)
    feats, lens = _padded_batch([9, 6])
    with torch.no_grad():
        log_probs, _ = model(feats, lens)
    assert log_probs.dtype == torch.float32
    assert torch.all(log_probs <= 0)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 9), atol=1e-5, rtol=0)


def test_stack_frames() -> None:
    feats = torch.arange(2 * 5 * 2, dtype=torch.float32).reshape(2, 5, 2)
    stacked, lengths = stack_frames(feats, torch.tensor([5, 2]), 2)
    assert stacked.shape == (2, 3, 4)
    assert lengths.tolist() == [3, 1]
    assert stacked[0, 0].tolist() == [0, 1, 2, 3]
    assert stacked[0, 2].tolist() == [8, 9, 0, 0]  # last partial block completed with zeros
    assert stacked[1, 0].tolist() == [10, 11, 12, 13]
    assert torch.equal(stacked[1, 1:], torch.zeros(2, 4))  # padding past length 2 is zero
    same, same_lengths = stack_frames(feats, torch.tensor([5, 2]), 1)
    assert same is feats and same_lengths.tolist() == [5, 2]


def test_uniform_init_within_scale() -> None:
    torch.manual_seed(0)
    config = ModelConfig(num_layers=2, hidden_size=16, init="uniform", init_scale=0.05)
    model = AcousticModel(config, FEAT_DIM, NUM_TOKENS)
    for name, param in model.named_parameters():
        assert param.abs().max().item() <= 0.05, name
        # Really drawn from the interval, not left at zero or PyTorch's default (1/sqrt(16) = 0.25).
        assert param.abs().max().item() > 0.04, name
    default = AcousticModel(ModelConfig(num_layers=2, hidden_size=16), FEAT_DIM, NUM_TOKENS)
    assert max(p.abs().max().item() for p in default.lstm.parameters()) > 0.05


def _lstm_parameters(inputs: int, hidden: int, layers: int, directions: int) -> int:
    """PyTorch LSTM: per direction and layer 4 gates x (hidden x (in + hidden) weights + 2 biases)."""
    total = 0
    layer_in = inputs
    for _ in range(layers):
        total += directions * 4 * (hidden * (layer_in + hidden) + 2 * hidden)
        layer_in = hidden * directions
    return total


def test_parameter_count_ctc_3l_250h() -> None:
    """CTC-3l-250h of Graves et al. (2013): 123 inputs, 62 outputs, 3 bidirectional layers of 250."""
    config = ModelConfig(num_layers=3, hidden_size=250, bidirectional=True)
    model = AcousticModel(config, feat_dim=123, num_tokens=62)
    expected = _lstm_parameters(123, 250, 3, 2) + (2 * 250 * 62 + 62)
    assert expected == 3_789_062
    assert count_parameters(model) == expected
    print(f"CTC-3l-250h: {count_parameters(model):,} parameters (paper: about 3.8M)")
    assert abs(count_parameters(model) - 3.8e6) / 3.8e6 < 0.10
    # The CMVN statistics are buffers, not trained parameters.
    assert "normalizer.mean" in model.state_dict()


def test_parameter_count_unidirectional_small() -> None:
    config = ModelConfig(num_layers=2, hidden_size=8, bidirectional=False)
    model = AcousticModel(config, feat_dim=10, num_tokens=5)
    assert count_parameters(model) == _lstm_parameters(10, 8, 2, 1) + 8 * 5 + 5


def test_frame_stack_multiplies_lstm_input() -> None:
    model = build_model(
        ModelConfig(num_layers=1, hidden_size=8, frame_stack=3), FeatureConfig(n_mels=12), 9
    )
    assert model.lstm.input_size == 36
    assert model.output.out_features == 9
    assert model.normalizer.mode == "global"


def test_dropout_only_between_layers() -> None:
    assert _tiny(dropout=0.3).lstm.dropout == 0.3
    one_layer = AcousticModel(
        ModelConfig(num_layers=1, hidden_size=8, dropout=0.3), FEAT_DIM, NUM_TOKENS
    )
    assert one_layer.lstm.dropout == 0.0
