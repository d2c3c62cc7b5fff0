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
    # float32 log_softmax, exp and a 7-term sum: ~(7 + 4) * eps ~ 7e-7; 1e-5 is >10x over.
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


# -- variants: projections, layer norm, peephole cells, conv2d front-end ---------------------

VARIANTS = {
    "packed": dict(lstm_impl="packed"),
    "padded": dict(lstm_impl="padded"),
    "lstmp": dict(proj_size=4),
    "lstmp_packed": dict(proj_size=4, lstm_impl="packed"),
    "layer_norm_packed": dict(layer_norm=True, lstm_impl="packed"),
    "layer_norm": dict(layer_norm=True, dropout=0.2),
    "peephole": dict(cell="peephole"),
    "peephole_uni": dict(cell="peephole", bidirectional=False),
    "conv2d": dict(frontend="conv2d", conv_channels=3),
    "lstmp_layer_norm": dict(proj_size=4, layer_norm=True),
}


@pytest.mark.parametrize("frame_stack", [1, 3])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_padded_batch_equals_each_utterance_alone(variant: str, frame_stack: int) -> None:
    model = _tiny(frame_stack, **VARIANTS[variant])
    lengths = [13, 10, 4, 7, 1]
    feats, lens = _padded_batch(lengths)
    with torch.no_grad():
        log_probs, out_lengths = model(feats, lens)
        assert out_lengths.tolist() == [-(-n // frame_stack) for n in lengths]
        for i, length in enumerate(lengths):
            alone, alone_len = model(feats[i : i + 1, :length], lens[i : i + 1])
            assert out_lengths[i] == alone_len[0] == alone.shape[1]
            diff = (log_probs[i, : out_lengths[i]] - alone[0]).abs().max().item()
            assert diff <= 1e-5, f"{variant}: utterance {i} (length {length}) differs by {diff}"


def test_fused_stack_keeps_nn_lstm_parameter_names() -> None:
    """Model directories written before the variants existed still load: the default model is
    one multi-layer nn.LSTM with the same parameter names."""
    model = _tiny()
    assert isinstance(model.lstm, torch.nn.LSTM)
    assert list(model.state_dict()) == [
        "normalizer.mean", "normalizer.std",
        "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
        "lstm.weight_ih_l0_reverse", "lstm.weight_hh_l0_reverse", "lstm.bias_ih_l0_reverse",
        "lstm.bias_hh_l0_reverse",
        "lstm.weight_ih_l1", "lstm.weight_hh_l1", "lstm.bias_ih_l1", "lstm.bias_hh_l1",
        "lstm.weight_ih_l1_reverse", "lstm.weight_hh_l1_reverse", "lstm.bias_ih_l1_reverse",
        "lstm.bias_hh_l1_reverse",
        "output.weight", "output.bias",
    ]


def test_lstmp_projects_every_layer() -> None:
    model = AcousticModel(ModelConfig(num_layers=2, hidden_size=8, proj_size=3), FEAT_DIM, NUM_TOKENS)
    assert model.lstm.proj_size == 3
    assert model.lstm.weight_hr_l1.shape == (3, 8)
    assert model.lstm.weight_ih_l1.shape == (32, 6)  # layer 2 reads both directions' projections
    assert model.output.in_features == 6


def test_layer_norm_sits_between_layers_only() -> None:
    model = AcousticModel(ModelConfig(num_layers=3, hidden_size=8, layer_norm=True), FEAT_DIM, NUM_TOKENS)
    assert len(model.lstm.layers) == 3 and len(model.lstm.norms) == 2
    assert all(norm.normalized_shape == (16,) for norm in model.lstm.norms)


def test_dropout_between_layers_is_active_in_training_only() -> None:
    model = _tiny(layer_norm=True, dropout=0.5)
    feats, lens = _padded_batch([9, 6])
    model.train()
    torch.manual_seed(1)
    a, _ = model(feats, lens)
    b, _ = model(feats, lens)
    assert not torch.allclose(a, b)
    model.eval()
    with torch.no_grad():
        c, _ = model(feats, lens)
        d, _ = model(feats, lens)
    assert torch.equal(c, d)


def _reference_peephole(layer, x: torch.Tensor, direction: int) -> torch.Tensor:
    """Graves' equations one frame at a time, in float64, for one ``(time, in)`` utterance."""
    w_ih = layer.weight_ih[direction].double()
    w_hh = layer.weight_hh[direction].double()
    bias = layer.bias[direction].double()
    w_ci, w_cf, w_co = layer.peephole[direction].double()
    hidden = layer.hidden_size
    h = torch.zeros(hidden, dtype=torch.float64)
    c = torch.zeros(hidden, dtype=torch.float64)
    frames = x.double() if direction == 0 else x.double().flip(0)
    out = []
    for frame in frames:
        z = w_ih @ frame + w_hh @ h + bias
        zi, zf, zg, zo = z.split(hidden)
        i = torch.sigmoid(zi + w_ci * c)
        f = torch.sigmoid(zf + w_cf * c)
        c = f * c + i * torch.tanh(zg)
        o = torch.sigmoid(zo + w_co * c)
        h = o * torch.tanh(c)
        out.append(h)
    result = torch.stack(out)
    return result if direction == 0 else result.flip(0)


def test_peephole_cell_follows_graves_equations() -> None:
    from asr.model import PeepholeLSTM

    torch.manual_seed(3)
    layer = PeepholeLSTM(input_size=4, hidden_size=5, bidirectional=True)
    x = torch.randn(2, 6, 4)
    lengths = torch.tensor([6, 4])
    with torch.no_grad():
        out = layer(x, lengths)
    assert out.shape == (2, 6, 10)
    for b, length in enumerate(lengths.tolist()):
        expected = torch.cat(
            [_reference_peephole(layer, x[b, :length], 0), _reference_peephole(layer, x[b, :length], 1)], dim=-1
        )
        # |h| < 1; each of 6 steps rounds a (4 + 5 + 1)-term pre-activation and the gates:
        # worst ~6 * 10 * eps ~ 4e-6 in float32 vs the float64 equations (typical far less).
        # A wrong gate or peephole term moves h by ~1e-2.
        torch.testing.assert_close(out[b, :length].double(), expected, atol=1e-5, rtol=0)
        assert torch.equal(out[b, length:], torch.zeros_like(out[b, length:]))
    # The peepholes matter: zeroing them changes the output.
    with torch.no_grad():
        layer.peephole.zero_()
        assert not torch.allclose(layer(x, lengths), out)


def test_peephole_gradients_reach_every_weight() -> None:
    model = _tiny(cell="peephole")
    model.train()
    feats, lens = _padded_batch([9, 5])
    log_probs, _ = model(feats, lens)
    log_probs.sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_conv2d_front_end_shapes() -> None:
    from asr.model import Conv2dSubsampling

    conv = Conv2dSubsampling(input_dim=80, k=3, channels=8)
    assert conv.output_dim == 8 * 20
    feats, lengths = conv(torch.randn(2, 31, 80), torch.tensor([31, 7]))
    assert feats.shape == (2, 11, 160) and lengths.tolist() == [11, 3]
    odd = Conv2dSubsampling(input_dim=41, k=2, channels=2)
    assert odd(torch.randn(1, 5, 41), torch.tensor([5]))[0].shape == (1, 3, odd.output_dim)
    assert odd.output_dim == 2 * 11


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(proj_size=8), "proj_size"),
        (dict(proj_size=2, cell="peephole"), "projections need"),
        (dict(frame_stack=0), "frame_stack"),
    ],
)
def test_bad_model_configs_are_one_line_errors(kwargs, message) -> None:
    from asr.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        AcousticModel(ModelConfig(num_layers=1, hidden_size=8, **kwargs), FEAT_DIM, NUM_TOKENS)


# -- parameter counts against Graves et al. (2013), Table 1 ----------------------------------

def test_graves_count_equals_peephole_model() -> None:
    """The paper's way of counting is exactly the parameter count of our peephole model."""
    from asr.model import graves_weight_count

    for layers, hidden, bidirectional in [(3, 250, True), (1, 622, True), (3, 421, False), (2, 7, True)]:
        config = ModelConfig(num_layers=layers, hidden_size=hidden, bidirectional=bidirectional, cell="peephole")
        model = AcousticModel(config, feat_dim=123, num_tokens=62)
        assert count_parameters(model) == graves_weight_count(config, 123, 62)


def test_graves_presets_match_table_1() -> None:
    """Every conf/model/ctc_*.yaml preset, with 123 inputs and 62 outputs, has the paper's
    weight count to the 0.1M the paper prints."""
    from pathlib import Path

    from asr.model.params import GRAVES_TABLE1, preset_counts

    conf = Path(__file__).resolve().parents[1] / "conf" / "model"
    rows = {row.name: row for row in preset_counts(sorted(conf.glob("ctc_*.yaml")))}
    assert set(rows) == set(GRAVES_TABLE1)
    expected = {
        "CTC-1l-250h": 780_562,
        "CTC-1l-622h": 3_793_018,
        "CTC-2l-250h": 2_284_062,
        "CTC-3l-250h": 3_787_562,
        "CTC-5l-250h": 6_794_562,
        "CTC-3l-421h-uni": 3_786_957,
    }
    for name, row in rows.items():
        assert row.graves_count == expected[name], name
        assert round(row.graves_count / 1e6, 1) == GRAVES_TABLE1[name] / 1e6, name
        # nn.LSTM: one more bias vector per direction and layer, no peepholes.
        directions = 1 if name.endswith("uni") else 2
        config = load_model_preset(conf / f"{row.path.name}")
        assert row.parameters - row.graves_count == directions * config.num_layers * config.hidden_size


def load_model_preset(path):
    from asr.config import load_config

    return load_config([path]).model


def test_print_params_and_graves_table(capsys) -> None:
    from pathlib import Path

    from asr.cli import main as asr_main

    conf = Path(__file__).resolve().parents[1] / "conf"
    code = asr_main.main(
        ["train", "--print-params", "--config", str(conf / "model" / "ctc_3l_250h.yaml"), "--feat-dim", "123"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "parameters: 3,789,062" in out
    assert "count them (peephole LSTM, one bias per gate): 3,787,562" in out
    assert asr_main.main(["train", "--graves-table"]) == 0
    table = capsys.readouterr().out
    assert "| CTC-3l-250h | ctc_3l_250h.yaml | 3,789,062 | 3,787,562 | 3.8M |" in table
    assert table.count("\n| CTC-") == 6


def test_modern_presets_build() -> None:
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / "conf" / "model"
    for name in ("blstmp_conv2d.yaml", "blstm_stack3_ln.yaml"):
        model = build_model(load_model_preset(conf / name), FeatureConfig(n_mels=80), 30)
        feats, lengths = torch.randn(2, 20, 80), torch.tensor([20, 11])
        with torch.no_grad():
            log_probs, out_lengths = model.eval()(feats, lengths)
        assert out_lengths.tolist() == [7, 4] and log_probs.shape == (2, 7, 30), name


@pytest.mark.parametrize("proj_size", [0, 3])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_padded_and_packed_lstm_agree_with_gradients(proj_size: int, bidirectional: bool) -> None:
    """Both ways of keeping padding out of the recurrence give the same outputs and the same
    gradients for nn.LSTM's weights."""
    from asr.model.lstm import run_packed, run_padded

    torch.manual_seed(2)
    lstm = torch.nn.LSTM(5, 6, 3, bidirectional=bidirectional, proj_size=proj_size, batch_first=True)
    x = torch.randn(4, 11, 5)
    lengths = torch.tensor([11, 3, 8, 1])
    grads = []
    outs = []
    for run in (run_packed, run_padded):
        lstm.zero_grad()
        out = run(lstm, x, lengths)
        (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in lstm.parameters()])
    # Different kernels (packed sequences vs a masked padded run): float32 rounding only.
    # Outputs: |h| < 1 and each of <= 11 steps x 3 layers rounds it by ~eps: 33 eps ~ 2e-6,
    # 1e-5 is ~5x over. Padding leaking into the recurrence would move them by ~0.1.
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=0)
    # Gradients: each entry sums the 23 valid frames' terms, each carried back through <= 11
    # steps x 3 layers: <= (23 + 33) eps of the tensor's largest entry, x4 headroom.
    steps = int(lengths.sum()) + x.shape[1] * 3
    for packed_grad, padded_grad in zip(*grads, strict=True):
        bound = 4 * steps * 2.0**-24 * packed_grad.abs().max().item()
        assert (padded_grad - packed_grad).abs().max().item() <= bound


def test_lstm_impl_auto_picks_padded_on_cpu(monkeypatch) -> None:
    from asr.model import lstm as lstm_module

    calls = []
    monkeypatch.setattr(lstm_module, "run_packed", lambda *a: calls.append("packed") or a[1])
    monkeypatch.setattr(lstm_module, "run_padded", lambda *a: calls.append("padded") or a[1])
    x, lengths = torch.zeros(1, 2, 3), torch.tensor([2])
    for impl in ("auto", "packed", "padded"):
        lstm_module.run_lstm(torch.nn.LSTM(3, 3), x, lengths, impl)
    assert calls == ["padded", "packed", "padded"]
