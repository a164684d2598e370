"""Macaron Conformer blocks (Gulati et al., 2020) used as sequence decoders of the CNN14 model family.

A block is ``x + FF/2 -> x + mixer -> x + conv module -> x + FF/2 -> LayerNorm``, every sub-module pre-normed:

- feed-forward module: LayerNorm -> Linear(d, e*d) -> SiLU -> dropout -> Linear(e*d, d) -> dropout, added with
  weight 1/2 (the "half-step" residual of Macaron-Net);
- mixer: multi-head self-attention with relative sinusoidal positions (Transformer-XL: content bias ``u``,
  position bias ``v``, a bias-free projection of the relative encodings), or, for ConBiMamba, a one-layer
  bidirectional Mamba-2 stack;
- convolution module: LayerNorm -> pointwise (d -> 2d) -> GLU -> depthwise conv (kernel k, no bias) -> BatchNorm
  -> SiLU -> pointwise (d -> d) -> dropout.

The layer shapes follow the PSELDNets/seed decoders, so parameter counts are identical to the references
(2 blocks, d 2048, 8 heads, FF expansion 2, kernel 7: 134,356,992 parameters). Two deliberate differences in
the attention, neither changing a parameter: scores are scaled by ``1/sqrt(d_head)`` (not ``1/sqrt(d_model)``),
and positions are true query-key distances ``i - j`` in ``[-(T-1), T-1]`` (the reference projects absolute
positions ``0..T-1`` and shifts them, which does not give a distance encoding). The pointwise convolutions are
``nn.Linear`` layers acting on ``(B, T, d)``, the same parameters without two transposes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seldflow.models.mamba import conbimamba_ac_mixer, conbimamba_mixer


def _xavier_linear(in_features: int, out_features: int, bias: bool = True) -> nn.Linear:
    layer = nn.Linear(in_features, out_features, bias=bias)
    nn.init.xavier_uniform_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class FeedForwardModule(nn.Module):
    """Pre-norm position-wise feed-forward network with SiLU (Swish)."""

    def __init__(self, d_model: int, expansion: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model),
            _xavier_linear(d_model, d_model * expansion),
            nn.SiLU(),
            nn.Dropout(dropout),
            _xavier_linear(d_model * expansion, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvolutionModule(nn.Module):
    """Pre-norm gated depthwise temporal convolution; ``(B, T, d) -> (B, T, d)``, same length for odd kernels."""

    def __init__(self, d_model: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel must be a positive odd number, got {kernel_size}")
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model, bias=False)
        self.batch_norm = nn.BatchNorm1d(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.glu(self.pointwise_in(self.norm(x)), dim=-1)  # (B, T, d)
        x = self.depthwise(x.transpose(1, 2))  # (B, d, T)
        x = F.silu(self.batch_norm(x)).transpose(1, 2)
        return self.dropout(self.pointwise_out(x))


def relative_sinusoids(length: int, d_model: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(2 * length - 1, d_model)`` sinusoidal encodings of the distances ``length-1, ..., 0, ..., -(length-1)``."""
    distances = torch.arange(length - 1, -length, -1, device=device, dtype=torch.float32)
    frequencies = torch.exp(
        torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )
    angles = distances[:, None] * frequencies[None, :]
    encoding = torch.empty(2 * length - 1, d_model, device=device, dtype=torch.float32)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return encoding.to(dtype)


class RelativePositionSelfAttention(nn.Module):
    """Pre-norm multi-head self-attention with Transformer-XL relative positions, followed by dropout.

    ``score[i, j] = ((q_i + u) . k_j + (q_i + v) . W_pos r_{i-j}) / sqrt(d_head)`` with sinusoidal ``r``.
    """

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        if heads < 1 or d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by {heads} attention heads")
        self.heads = heads
        self.d_head = d_model // heads
        self.norm = nn.LayerNorm(d_model)
        self.query = _xavier_linear(d_model, d_model)
        self.key = _xavier_linear(d_model, d_model)
        self.value = _xavier_linear(d_model, d_model)
        self.position = _xavier_linear(d_model, d_model, bias=False)
        self.content_bias = nn.Parameter(torch.empty(heads, self.d_head))
        self.position_bias = nn.Parameter(torch.empty(heads, self.d_head))
        nn.init.xavier_uniform_(self.content_bias)
        nn.init.xavier_uniform_(self.position_bias)
        self.out = _xavier_linear(d_model, d_model)
        self.attention_dropout = dropout
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:-1], self.heads, self.d_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, d_model = x.shape
        x = self.norm(x)
        q = self._heads(self.query(x))  # (B, T, H, dh)
        k = self._heads(self.key(x)).transpose(1, 2)  # (B, H, T, dh)
        v = self._heads(self.value(x)).transpose(1, 2)
        encodings = relative_sinusoids(length, d_model, device=x.device, dtype=x.dtype)
        p = self._heads(self.position(encodings)).permute(1, 2, 0)  # (H, dh, 2T-1)
        # Position term against every distance, then pick distance i - j for each (query i, key j).
        by_distance = torch.matmul((q + self.position_bias).transpose(1, 2), p)  # (B, H, T, 2T-1)
        steps = torch.arange(length, device=x.device)
        index = (length - 1) - steps[:, None] + steps[None, :]  # column of distance i - j
        position_scores = by_distance.gather(3, index.expand(batch, self.heads, length, length))
        # Explicit casts: under autocast the fp32 biases would otherwise promote the query and mask.
        context = F.scaled_dot_product_attention(
            (q + self.content_bias).transpose(1, 2).to(v.dtype),
            k,
            v,
            attn_mask=(position_scores / math.sqrt(self.d_head)).to(v.dtype),
            dropout_p=self.attention_dropout if self.training else 0.0,
        )  # default scale 1/sqrt(d_head) on the content term
        context = context.transpose(1, 2).reshape(batch, length, d_model)
        return self.dropout(self.out(context))


class ConformerBlock(nn.Module):
    """One macaron block around an arbitrary ``(B, T, d) -> (B, T, d)`` sequence mixer."""

    def __init__(
        self,
        d_model: int,
        mixer: nn.Module,
        *,
        ff_expansion: int,
        conv_kernel: int,
        ff_dropout: float,
        conv_dropout: float,
        half_step_residual: bool = True,
    ) -> None:
        super().__init__()
        self.ff_scale = 0.5 if half_step_residual else 1.0
        self.ff_in = FeedForwardModule(d_model, ff_expansion, ff_dropout)
        self.mixer = mixer
        self.conv = ConvolutionModule(d_model, conv_kernel, conv_dropout)
        self.ff_out = FeedForwardModule(d_model, ff_expansion, ff_dropout)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ff_scale * self.ff_in(x)
        x = x + self.mixer(x)
        x = x + self.conv(x)
        x = x + self.ff_scale * self.ff_out(x)
        return self.norm(x)


class ConformerStack(nn.Module):
    """``n_layers`` macaron blocks, each with a fresh mixer from ``mixer_factory``."""

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        mixer_factory: Callable[[], nn.Module],
        *,
        ff_expansion: int,
        conv_kernel: int,
        ff_dropout: float,
        conv_dropout: float,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"a decoder needs at least 1 layer, got {n_layers}")
        self.blocks = nn.Sequential(
            *(
                ConformerBlock(
                    d_model,
                    mixer_factory(),
                    ff_expansion=ff_expansion,
                    conv_kernel=conv_kernel,
                    ff_dropout=ff_dropout,
                    conv_dropout=conv_dropout,
                )
                for _ in range(n_layers)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def conformer(
    d_model: int = 2048,
    n_layers: int = 2,
    *,
    heads: int = 8,
    ff_expansion: int = 2,
    conv_kernel: int = 7,
    dropout: float = 0.05,
) -> ConformerStack:
    """Conformer decoder; the defaults are CNN14-Conformer's (``EXP_CNN14_Conformer``: every dropout 0.05)."""
    return ConformerStack(
        d_model,
        n_layers,
        lambda: RelativePositionSelfAttention(d_model, heads, dropout),
        ff_expansion=ff_expansion,
        conv_kernel=conv_kernel,
        ff_dropout=dropout,
        conv_dropout=dropout,
    )


def conbimamba(
    d_model: int = 2048,
    n_layers: int = 2,
    *,
    axial: bool = False,
    ff_expansion: int = 4,
    conv_kernel: int = 31,
    ff_dropout: float = 0.1,
    conv_dropout: float = 0.1,
    **mamba_args: Any,
) -> ConformerStack:
    """ConBiMamba decoder: macaron blocks whose mixer is a one-layer bidirectional Mamba-2 stack.

    ``axial=False`` mixes with :func:`~seldflow.models.mamba.conbimamba_mixer` (a 1-layer ``BMambaBlocks``, headdim
    32: CNN14-ConBiMamba), ``axial=True`` with :func:`~seldflow.models.mamba.conbimamba_ac_mixer` (a 1-layer 2-D
    ``BMamba2DAcBlocks``: CNN14-ConBiMambaAC); ``mamba_args`` override that mixer's arguments. The feed-forward
    and convolution dropouts default to 0.1 because the seed's ConBiMamba experiments pass their ``dropout``
    (0.05) only to the Mamba mixer and leave these at the block defaults.
    """
    mixer = conbimamba_ac_mixer if axial else conbimamba_mixer
    return ConformerStack(
        d_model,
        n_layers,
        lambda: mixer(d_model, **mamba_args),
        ff_expansion=ff_expansion,
        conv_kernel=conv_kernel,
        ff_dropout=ff_dropout,
        conv_dropout=conv_dropout,
    )
