"""Mamba-2 (SSD) and the bidirectional Mamba decoders: scan parity, block structure, reference quirks, counts."""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seldflow.models import mamba
from seldflow.models.mamba import (
    REFERENCE_PARAMETERS,
    BidirectionalMamba2,
    BiMamba2Ac2d,
    BMamba2DAcBlocks,
    BMambaBlocks,
    Mamba2,
    Mamba2State,
    bimamba_ac_decoder,
    bimamba_decoder,
    conbimamba_ac_mixer,
    conbimamba_mixer,
    select_scan_backend,
    ssd_scan,
    ssd_scan_chunked,
    ssd_scan_sequential,
)

# A small Mamba-2: d_inner 32, 4 heads of 8, 2 chunks of 8 for a 13-frame sequence.
SMALL = {"d_state": 4, "d_conv": 4, "expand": 2, "headdim": 8, "chunk_size": 8}
SMALL_AC = {"d_state": 4, "headdim": 8, "chunk_size": 8, "mamba_dim": 8, "freq_dim": 6}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def scan_inputs(
    length: int,
    *,
    batch: int = 2,
    heads: int = 4,
    headdim: int = 3,
    d_state: int = 5,
    groups: int = 1,
    dtype: torch.dtype = torch.float64,
    dt_scale: float = 1.0,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return {
        "x": randn(batch, length, heads, headdim).to(dtype),
        "dt": (dt_scale * F.softplus(randn(batch, length, heads))).to(dtype),
        "A": (-torch.exp(-1 - torch.rand(heads, generator=g, dtype=torch.float64))).to(dtype),
        "B": randn(batch, length, groups, d_state).to(dtype),
        "C": randn(batch, length, groups, d_state).to(dtype),
    }


def naive_mamba2(m: Mamba2, u: torch.Tensor) -> torch.Tensor:
    """The block written out step by step: conv module with padding then crop, sequential scan, gated norm."""
    length = u.shape[1]
    z, xbc, dt = torch.split(m.in_proj(u), [m.d_inner, m.d_inner + 2 * m.d_state, m.nheads], dim=-1)
    xbc = F.silu(m.conv1d(xbc.transpose(1, 2))[..., :length].transpose(1, 2))
    x, B, C = torch.split(xbc, [m.d_inner, m.d_state, m.d_state], dim=-1)
    x = x.reshape(*x.shape[:2], m.nheads, m.headdim)
    y = ssd_scan_sequential(x, F.softplus(dt + m.dt_bias), -torch.exp(m.A_log), B, C)
    y = (y + x * m.D[:, None]).reshape(*u.shape[:2], m.d_inner) * F.silu(z)
    y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + m.norm.eps) * m.norm.weight
    return m.out_proj(y)


def naive_bidirectional(layer: BidirectionalMamba2, x: torch.Tensor, pad_to: int | None) -> torch.Tensor:
    """The reference's data flow: zero-pad the input at the end, run both directions on it, crop, add, norm."""
    length = x.shape[1]
    padded = F.pad(x, (0, 0, 0, (-length) % pad_to)) if pad_to else x
    y = layer.mamba2_for(padded) + layer.mamba2_back(padded.flip(1)).flip(1)
    return layer.layer_norm(y[:, :length] + x)


def with_random_biases(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-zero biases everywhere, so zero padding frames carry information through the projections."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return module


# --------------------------------------------------------------------------------------------------------------
# SSD scan
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "chunk", "groups"),
    [(1, 8, 1), (7, 8, 1), (13, 4, 1), (29, 8, 2), (32, 8, 1), (50, 16, 4)],
)
def test_chunked_scan_matches_sequential_recurrence(length: int, chunk: int, groups: int) -> None:
    inputs = scan_inputs(length, groups=groups, seed=length)
    state = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    y, final = ssd_scan_chunked(**inputs, chunk_size=chunk, initial_state=state, return_final_state=True)
    y_ref, final_ref = ssd_scan_sequential(**inputs, initial_state=state, return_final_state=True)
    assert y.shape == (2, length, 4, 3)
    assert rel_err(y, y_ref) < 1e-12
    assert rel_err(final, final_ref) < 1e-12
    # Without an initial state, and B/C given as one shared group in 3-D form.
    if groups == 1:
        inputs["B"], inputs["C"] = inputs["B"][:, :, 0], inputs["C"][:, :, 0]
    assert rel_err(ssd_scan_chunked(**inputs, chunk_size=chunk), ssd_scan_sequential(**inputs)) < 1e-12


def test_chunked_scan_float32_relative_error_below_1e5() -> None:
    inputs = scan_inputs(45, dtype=torch.float32, seed=3)
    y = ssd_scan_chunked(**inputs, chunk_size=16)
    assert y.dtype == torch.float32
    y_ref = ssd_scan_sequential(**{k: v.double() for k, v in inputs.items()})
    assert rel_err(y.double(), y_ref) < 1e-5


@pytest.mark.parametrize("with_state", [False, True])
def test_chunked_scan_gradients_match_sequential(with_state: bool) -> None:
    inputs = {k: v.requires_grad_() for k, v in scan_inputs(19, groups=2, seed=7).items()}
    state = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True) if with_state else None
    weights = torch.randn(2, 19, 4, 3, dtype=torch.float64)
    final_weights = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    leaves = [*inputs.values()] + ([state] if with_state else [])

    def grads(scan, **kwargs: object) -> list[torch.Tensor]:
        y, final = scan(**inputs, initial_state=state, return_final_state=True, **kwargs)
        loss = (y * weights).sum() + (final * final_weights).sum()
        return list(torch.autograd.grad(loss, leaves))

    for got, want in zip(grads(ssd_scan_chunked, chunk_size=8), grads(ssd_scan_sequential), strict=True):
        assert rel_err(got, want) < 1e-10


def test_chunked_scan_state_carries_across_calls() -> None:
    inputs = scan_inputs(23, seed=5)
    y_full, final_full = ssd_scan_chunked(**inputs, chunk_size=4, return_final_state=True)
    first = {k: v[:, :10] if v.dim() > 1 else v for k, v in inputs.items()}
    second = {k: v[:, 10:] if v.dim() > 1 else v for k, v in inputs.items()}
    y1, state = ssd_scan_chunked(**first, chunk_size=4, return_final_state=True)
    y2, final = ssd_scan_chunked(**second, chunk_size=4, initial_state=state, return_final_state=True)
    assert rel_err(torch.cat([y1, y2], dim=1), y_full) < 1e-12
    assert rel_err(final, final_full) < 1e-12


def test_chunk_size_does_not_change_the_exact_scan() -> None:
    inputs = scan_inputs(37, seed=11)
    outputs = [ssd_scan_chunked(**inputs, chunk_size=chunk) for chunk in (1, 3, 8, 37, 64)]
    for y in outputs[1:]:
        assert rel_err(y, outputs[0]) < 1e-12


def test_clamp_is_inert_while_decays_stay_above_exp_minus_10() -> None:
    # Total decay over the whole sequence is far from exp(-10): every clamped segment sum is inside [-10, 10].
    inputs = scan_inputs(29, dt_scale=0.1, seed=2)
    assert (inputs["dt"] * -inputs["A"]).sum(1).max() < 10
    exact = ssd_scan_chunked(**inputs, chunk_size=8)
    assert torch.equal(ssd_scan_chunked(**inputs, chunk_size=8, clamp=10.0), exact)
    assert rel_err(exact, ssd_scan_sequential(**inputs)) < 1e-12


def test_clamp_matters_for_strong_decay() -> None:
    # Decay exp(-3) per step: after a few steps the true weight is far below the clamp's floor exp(-10).
    inputs = scan_inputs(24, seed=4)
    inputs["dt"] = torch.full_like(inputs["dt"], 3.0)
    inputs["A"] = -torch.ones_like(inputs["A"])
    inputs["x"][:, :4] *= 1e4  # large early inputs, which the exact recurrence has long forgotten
    reference = ssd_scan_sequential(**inputs)
    assert rel_err(ssd_scan_chunked(**inputs, chunk_size=8), reference) < 1e-12
    # Frames 6-7: exactly, the early inputs are forgotten (weight < exp(-9)); clamped, they keep exp(-10) at least.
    clamped = ssd_scan_chunked(**inputs, chunk_size=8, clamp=10.0)
    assert rel_err(clamped[:, 6:8], reference[:, 6:8]) > 0.1


def test_reference_clamp_leaks_later_inputs_into_earlier_outputs() -> None:
    inputs = scan_inputs(12, seed=9)
    changed = {k: v.clone() for k, v in inputs.items()}
    changed["x"][:, 5] += 1.0  # a later frame of the same chunk
    for kwargs in ({}, {"clamp": 10.0}):
        before = ssd_scan_chunked(**inputs, chunk_size=8, **kwargs)
        after = ssd_scan_chunked(**changed, chunk_size=8, **kwargs)
        assert torch.equal(before[:, :5], after[:, :5])  # causal
    before = ssd_scan_chunked(**inputs, chunk_size=8, clamp=10.0, clamp_future=True)
    after = ssd_scan_chunked(**changed, chunk_size=8, clamp=10.0, clamp_future=True)
    leak = (after[:, :5] - before[:, :5]).abs().max().item()
    assert 0 < leak < 1e-2  # weight exp(-10) = 4.5e-5 times C.B dt terms of order one
    # The reference's clamp with the future entries included is otherwise the same computation.
    assert rel_err(before, ssd_scan_chunked(**inputs, chunk_size=8)) < 1e-3


def test_scan_rejects_bad_shapes() -> None:
    inputs = scan_inputs(5, groups=3, heads=4)
    with pytest.raises(ValueError, match="groups"):
        ssd_scan_chunked(**inputs, chunk_size=4)
    inputs = scan_inputs(5)
    with pytest.raises(ValueError, match="heads"):
        ssd_scan_chunked(inputs["x"][:, :, 0], inputs["dt"], inputs["A"], inputs["B"], inputs["C"], 4)


# --------------------------------------------------------------------------------------------------------------
# Backend selection
# --------------------------------------------------------------------------------------------------------------


def test_cpu_tensors_take_the_pure_path_even_when_the_kernel_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mamba, "_fused_scan", lambda *a, **k: pytest.fail("fused kernel called for a CPU tensor"))
    x = torch.zeros(1, 4, 2, 2)
    assert select_scan_backend(x) == "torch"
    assert select_scan_backend(x, "torch") == "torch"
    with pytest.raises(RuntimeError, match="CUDA"):
        select_scan_backend(x, "mamba_ssm")
    with pytest.raises(ValueError, match="unknown scan backend"):
        select_scan_backend(x, "triton")
    inputs = scan_inputs(6, dtype=torch.float32)
    y, _ = ssd_scan(**inputs, chunk_size=4)
    assert torch.equal(y, ssd_scan_chunked(**inputs, chunk_size=4))


def test_cuda_tensors_take_the_kernel_only_when_mamba_ssm_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda_like = SimpleNamespace(is_cuda=True)
    monkeypatch.setattr(mamba, "_fused_scan", lambda *a, **k: None)
    assert select_scan_backend(cuda_like) == "mamba_ssm"
    assert select_scan_backend(cuda_like, "torch") == "torch"
    monkeypatch.setattr(mamba, "_fused_scan", None)
    assert select_scan_backend(cuda_like) == "torch"
    with pytest.raises(RuntimeError):
        select_scan_backend(cuda_like, "mamba_ssm")


def test_missing_or_broken_mamba_ssm_means_no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mamba, "_fused_scan", mamba._UNSET)
    monkeypatch.setitem(sys.modules, "mamba_ssm", None)  # makes the import raise ImportError
    assert not mamba.fused_scan_available()
    assert mamba._fused_scan is None  # the failed import is remembered, not retried on every call


def test_mamba2_drives_the_kernel_through_its_public_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_kernel(x, dt, A, B, C, chunk_size, initial_states=None, return_final_states=False):
        calls.append({"B": B.shape, "init": None if initial_states is None else initial_states.shape})
        assert all(t.is_contiguous() for t in (x, dt, A, B, C))
        return ssd_scan_chunked(
            x, dt, A, B, C, chunk_size, initial_state=initial_states, return_final_state=return_final_states
        )

    torch.manual_seed(0)
    layer = BidirectionalMamba2(16, **SMALL, dropout=0.0, clamp=None).double().eval()
    x = torch.randn(3, 13, 16, dtype=torch.float64)
    expected = layer(x)
    monkeypatch.setattr(mamba, "_fused_scan", fake_kernel)
    monkeypatch.setattr(mamba, "select_scan_backend", lambda x, backend="auto": "mamba_ssm")
    assert rel_err(layer(x), expected) < 1e-12
    assert {"B": (3, 13, 1, 4), "init": None} in calls
    assert {"B": (1, 3, 1, 4), "init": None} in calls  # the zero prefix (16 - 13 frames), one sequence
    assert {"B": (3, 13, 1, 4), "init": (3, 4, 8, 4)} in calls  # the backward scan starting from it


# --------------------------------------------------------------------------------------------------------------
# Mamba-2 block
# --------------------------------------------------------------------------------------------------------------


def test_mamba2_layout_matches_mamba_ssm_and_reference() -> None:
    m = Mamba2(16, **SMALL)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    d_inner, heads, conv_dim = 32, 4, 32 + 2 * 4
    assert shapes == {
        "in_proj.weight": (2 * d_inner + 2 * 4 + heads, 16),
        "in_proj.bias": (2 * d_inner + 2 * 4 + heads,),
        "conv1d.weight": (conv_dim, 1, 4),
        "conv1d.bias": (conv_dim,),
        "dt_bias": (heads,),
        "A_log": (heads,),
        "D": (heads,),
        "norm.weight": (d_inner,),
        "out_proj.weight": (16, d_inner),
        "out_proj.bias": (16,),
    }
    assert "in_proj.bias" not in Mamba2(16, **SMALL, bias=False).state_dict()


def test_mamba2_initialisation() -> None:
    torch.manual_seed(0)
    m = Mamba2(64, d_state=8, headdim=8)
    assert m.A_log.min() >= -2 and m.A_log.max() <= -1
    for p in (m.dt_bias, m.D):
        assert p.abs().max() <= 0.1
    assert torch.all(m.conv1d.bias == 0)
    assert torch.all(m.norm.weight == 1)
    fan_in, fan_out = 64, m.in_proj.out_features
    assert m.in_proj.weight.abs().max() <= 0.5 * math.sqrt(6 / (fan_in + fan_out))


def test_mamba2_rejects_incompatible_headdim() -> None:
    with pytest.raises(ValueError, match="headdim"):
        Mamba2(10, headdim=8)
    with pytest.raises(ValueError, match="backend"):
        Mamba2(16, **SMALL, backend="cuda")


@pytest.mark.parametrize("length", [5, 13, 16])
def test_mamba2_matches_step_by_step_block(length: int) -> None:
    torch.manual_seed(length)
    m = with_random_biases(Mamba2(16, **SMALL, clamp=None)).double()
    u = torch.randn(2, length, 16, dtype=torch.float64)
    assert rel_err(m(u), naive_mamba2(m, u)) < 1e-10


def test_mamba2_default_clamp_is_inert_at_initialisation() -> None:
    torch.manual_seed(1)
    m = Mamba2(16, **SMALL).double()
    u = torch.randn(2, 21, 16, dtype=torch.float64)
    assert rel_err(m(u), naive_mamba2(m, u)) < 1e-6


def test_mamba2_is_causal_and_carries_state() -> None:
    torch.manual_seed(2)
    m = with_random_biases(Mamba2(16, **SMALL, clamp=None)).double()
    u = torch.randn(2, 21, 16, dtype=torch.float64)
    full = m(u)
    assert rel_err(m(u[:, :11]), full[:, :11]) < 1e-12
    first, state = m(u[:, :11], return_state=True)
    assert isinstance(state, Mamba2State)
    assert state.conv.shape == (2, 3, 40) and state.ssm.shape == (2, 4, 8, 4)
    second = m(u[:, 11:], state)
    assert rel_err(torch.cat([first, second], dim=1), full) < 1e-12


def test_zero_prefix_state_equals_reading_zero_frames() -> None:
    torch.manual_seed(3)
    m = with_random_biases(Mamba2(16, **SMALL, clamp=None)).double()
    u = torch.randn(3, 9, 16, dtype=torch.float64)
    with_zeros = m(torch.cat([u.new_zeros(3, 7, 16), u], dim=1))[:, 7:]
    assert rel_err(m(u, m.zero_prefix_state(7, batch=3)), with_zeros) < 1e-12


# --------------------------------------------------------------------------------------------------------------
# bmamba
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [5, 13, 16, 19])
def test_bidirectional_reproduces_reference_padding_before_flip(length: int) -> None:
    torch.manual_seed(length)
    layer = with_random_biases(BidirectionalMamba2(16, **SMALL, dropout=0.0, clamp=None)).double().eval()
    x = torch.randn(2, length, 16, dtype=torch.float64)
    assert rel_err(layer(x), naive_bidirectional(layer, x, pad_to=8)) < 1e-12
    layer.pad_multiple = None  # as built with reference_padding=False
    assert rel_err(layer(x), naive_bidirectional(layer, x, pad_to=None)) < 1e-12


def test_reference_padding_changes_the_backward_scan() -> None:
    torch.manual_seed(0)
    kwargs = {**SMALL, "dropout": 0.0, "clamp": None}
    padded = with_random_biases(BidirectionalMamba2(16, **kwargs)).double().eval()
    plain = BidirectionalMamba2(16, **kwargs, reference_padding=False).double().eval()
    plain.load_state_dict(padded.state_dict())
    assert rel_err(plain(torch.ones(1, 16, 16, dtype=torch.float64)), padded(torch.ones(1, 16, 16).double())) < 1e-12
    x = torch.randn(2, 13, 16, dtype=torch.float64)
    assert rel_err(plain(x), padded(x)) > 1e-3


def test_bmamba_blocks_structure_and_training_step() -> None:
    torch.manual_seed(0)
    blocks = BMambaBlocks(16, 2, **SMALL, dropout=0.1)
    assert sorted(k for k in blocks.state_dict() if not k.startswith("layers.")) == ["norm.bias", "norm.weight"]
    assert {k.split(".")[2] for k in blocks.state_dict() if k.startswith("layers.0.")} == {
        "mamba2_for",
        "mamba2_back",
        "layer_norm",
    }
    x = torch.randn(3, 13, 16)
    y = blocks(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in blocks.parameters())
    blocks.eval()
    assert torch.equal(blocks(x), blocks(x))


# --------------------------------------------------------------------------------------------------------------
# bmamba_ac
# --------------------------------------------------------------------------------------------------------------


def test_ac_decoder_shapes_gradients_and_residual_input() -> None:
    torch.manual_seed(0)
    decoder = BMamba2DAcBlocks(24, 2, **SMALL_AC, dropout=0.0)
    for frames in (5, 11):
        x = torch.randn(2, frames, 24)
        y = decoder(x)
        assert y.shape == x.shape
    y.square().mean().backward()
    assert all(p.grad is not None for p in decoder.parameters())


def test_ac_layers_add_a_residual_only_where_shapes_match() -> None:
    torch.manual_seed(0)
    decoder = BMamba2DAcBlocks(24, 2, **SMALL_AC, dropout=0.0).eval()
    x = torch.randn(2, 5, 24)
    outputs = [torch.randn(2, 5, 6, 6), torch.randn(2, 5, 6, 6)]
    seen = []

    class Stub(nn.Module):
        def __init__(self, out: torch.Tensor) -> None:
            super().__init__()
            self.out = out

        def forward(self, m: torch.Tensor) -> torch.Tensor:
            seen.append(m)
            return self.out

    decoder.mamba_layers = nn.ModuleList(Stub(o) for o in outputs)
    y = decoder(x)
    assert seen[0].shape == (2, 5, 6, 1)  # the one-channel map: no residual after layer 1
    assert torch.equal(seen[1], outputs[0])
    conv = decoder.output_adapter[0]
    merged = F.linear(outputs[0] + outputs[1], conv.weight.reshape(1, 6), conv.bias).squeeze(-1)
    expected = decoder.final_norm(F.adaptive_avg_pool1d(merged, 24)) + x
    assert torch.allclose(y, expected, atol=1e-6)


def test_ac_frequency_expansion_repeats_bins() -> None:
    signal = torch.arange(12.0).reshape(1, 2, 6)
    assert torch.equal(F.adaptive_avg_pool1d(signal, 24), signal.repeat_interleave(4, dim=-1))


@pytest.mark.parametrize("reference", [True, False])
def test_ac_time_scan_input_layout(reference: bool) -> None:
    torch.manual_seed(0)
    layer = BiMamba2Ac2d(3, 4, 8, reference_time_reshape=reference, d_state=4, headdim=8, chunk_size=8)
    captured = {}
    for name in ("bi_mamba_h2", "bi_mamba_w1"):
        getattr(layer, name).register_forward_hook(lambda mod, args, out, name=name: captured.update({name: args[0]}))
    b, h, w, c = 2, 5, 6, 3
    x = torch.randn(b, h, w, c)
    assert layer(x).shape == (b, h, w, 4)
    assert torch.equal(captured["bi_mamba_w1"], x.reshape(b * h, w, c))  # rows: one sequence per frame
    columns = x.permute(0, 2, 1, 3).reshape(b * w, h * c)  # each column read frame by frame
    if reference:
        # Step j, channel i reads element i * h + j of the frame-major column: frames and channels interleaved.
        index = torch.tensor([[i * h + j for i in range(c)] for j in range(h)])
    else:
        index = torch.tensor([[j * c + i for i in range(c)] for j in range(h)])  # step j = frame j
    assert torch.equal(captured["bi_mamba_h2"], columns[:, index])


def test_ac_time_axis_mapping_round_trips() -> None:
    layer = BiMamba2Ac2d(3, 3, 8, reference_time_reshape=False, d_state=4, headdim=8, chunk_size=8)
    x = torch.randn(2, 5, 6, 3)
    assert torch.equal(layer._along_h(nn.Identity(), x), x)
    assert torch.equal(layer._along_w(nn.Identity(), x), x)


def test_ac_reference_time_resampling_is_identity_up_to_84_frames() -> None:
    torch.manual_seed(0)
    sane = BMamba2DAcBlocks(24, 1, **SMALL_AC, dropout=0.0).double().eval()
    quirk = BMamba2DAcBlocks(24, 1, **SMALL_AC, dropout=0.0, reference_time_dim=251).double().eval()
    quirk.load_state_dict(sane.state_dict())
    x = torch.randn(1, 31, 24, dtype=torch.float64)
    assert rel_err(quirk(x) - x, sane(x) - x) < 1e-10
    x = torch.randn(1, 100, 24, dtype=torch.float64)
    assert rel_err(quirk(x) - x, sane(x) - x) > 1e-3


def test_ac_backward_scans_reproduce_reference_padding() -> None:
    torch.manual_seed(0)
    line = with_random_biases(mamba.BiMamba2_1D(3, 4, 8, d_state=4, headdim=8, chunk_size=8, clamp=None)).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    padded = F.pad(x, (0, 0, 0, 3))
    h = line.fc_in(padded)
    expected = line.fc_out(line.mamba2_for(h) + line.mamba2_back(h.flip(1)).flip(1))[:, :5]
    assert rel_err(line(x), expected) < 1e-12


# --------------------------------------------------------------------------------------------------------------
# Reference configurations and parameter counts
# --------------------------------------------------------------------------------------------------------------

ENCODER_AND_SCALARS = 75_481_664
OUTPUT_LINEAR = 2048 * 117 + 117  # 239,733


def mamba2_parameters(d_model: int, d_state: int, expand: int, headdim: int, d_conv: int, bias: bool) -> int:
    d_inner = expand * d_model
    heads = d_inner // headdim
    projected = 2 * d_inner + 2 * d_state + heads
    conv_dim = d_inner + 2 * d_state
    return (
        d_model * projected
        + bias * projected  # in_proj
        + conv_dim * d_conv
        + conv_dim  # depthwise conv1d with bias
        + 3 * heads  # dt_bias, A_log, D
        + d_inner  # gated RMSNorm
        + d_inner * d_model
        + bias * d_model  # out_proj
    )


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_reference_counts_follow_from_the_reference_totals() -> None:
    assert OUTPUT_LINEAR == 239_733
    assert REFERENCE_PARAMETERS["bmamba"] == 178_113_205 - ENCODER_AND_SCALARS - OUTPUT_LINEAR
    assert REFERENCE_PARAMETERS["bmamba_ac"] == 76_083_414 - ENCODER_AND_SCALARS - OUTPUT_LINEAR
    # ConBiMamba and ConBiMamba-AC differ only in the mixer of their two blocks.
    mixers = REFERENCE_PARAMETERS["conbimamba_mixer"] - REFERENCE_PARAMETERS["conbimamba_ac_mixer"]
    assert 2 * mixers == 338_247_349 - 235_819_543


def test_reference_decoders_have_the_reference_parameter_counts() -> None:
    with torch.device("meta"):  # shapes only: no 400 MB of weights to initialise
        decoders = {
            "bmamba": bimamba_decoder(),
            "bmamba_ac": bimamba_ac_decoder(),
            "conbimamba_mixer": conbimamba_mixer(),
            "conbimamba_ac_mixer": conbimamba_ac_mixer(),
        }
        explicit = BMambaBlocks(2048, 2, 64, 4, 2, 64, 64, 0.05)
    assert {name: count(m) for name, m in decoders.items()} == REFERENCE_PARAMETERS
    assert count(explicit) == REFERENCE_PARAMETERS["bmamba"]
    # Layer by layer: 2 x (2 Mamba-2 + LayerNorm) + final LayerNorm.
    layer = 2 * mamba2_parameters(2048, 64, 2, 64, 4, bias=True) + 2 * 2048
    assert 2 * layer + 2 * 2048 == REFERENCE_PARAMETERS["bmamba"]
    conbimamba = 2 * mamba2_parameters(2048, 64, 2, 32, 4, bias=True) + 4 * 2048
    assert conbimamba == REFERENCE_PARAMETERS["conbimamba_mixer"]
    assert decoders["conbimamba_mixer"].layers[0].mamba2_for.nheads == 128


def test_ac_decoder_count_layer_by_layer() -> None:
    inner = mamba2_parameters(32, 64, 2, 32, 4, bias=False)

    def line(cin: int, cout: int) -> int:
        return cin * 32 + 2 * inner + 32 * cout

    def ac_layer(cin: int) -> int:
        return 2 * line(64, 64) + 2 * line(cin, 64) + (2 * 64 * 64 + 64)

    adapters = (2048 * 64 + 64) + 2 * 64 + (64 + 1) + 2 * 2048
    assert ac_layer(1) + ac_layer(64) + adapters == REFERENCE_PARAMETERS["bmamba_ac"]
    assert ac_layer(1) + adapters == REFERENCE_PARAMETERS["conbimamba_ac_mixer"]
    with torch.device("meta"):
        assert count(BMamba2DAcBlocks(2048, bias=True)) > REFERENCE_PARAMETERS["bmamba_ac"]
