"""The DOAnet CRNN and its registry: up to ``n_max`` DOA vectors per label frame, and optionally their activity.

Architecture (Adavanne et al., WASPAA 2021; reference ``doanet_model.py::CRNN`` with its default parameters):

* 3 × [Conv2d 3×3 (padding 1), ``filters`` maps, BatchNorm, ReLU, MaxPool], pools (time, freq) (5, 2), (1, 2),
  (1, 2): 20-ms feature frames become 100-ms label frames and 64 mel bins become 8 (dropout 0, so none here);
* the maps of a frame flattened (``filters × 8`` = 1024 features) → bidirectional GRU, 2 layers × 128, → tanh →
  forward ⊙ backward halves (128 features);
* DOA head: Linear 128 + ReLU, twice, → Linear ``3 · n_max`` → tanh; the output is laid out as the reference's,
  ``[x_1 … x_n, y_1 … y_n, z_1 … z_n]`` (:func:`doa_tracks` turns it into ``(…, n_max, 3)``);
* activity head (dMOT + activity training only): the same from the GRU output → Linear ``n_max``. The reference
  passes it through tanh and then treats it as logits (``BCEWithLogits``, inference ``sigmoid > 0.5``);
  ``activity_tanh`` keeps that (default) or gives raw logits.

Parameters with the defaults and 64 mels (7-channel FOA): CNN 304,128 (convolutions with bias, BatchNorm affine),
GRU 1,182,720, DOA head 33,798, activity head 33,282, total 1,553,928; the 10-channel MIC input adds
3 · 3 · 3 · 128 = 3,456 (1,557,384). Without the activity head (MSE or dMOT-only training) 33,282 fewer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from seldflow.checkpoints import load_checkpoint
from seldflow.errors import ConfigError, InputError
from seldflow.models import count_parameters
from seldflow.models.registry import build_registered

# Configuration section of the DOAnet keys (the ``source`` of a ConfigError).
CONFIG_SOURCE = "doanet"
# Reference pools: time (5 × 20 ms = one 100-ms label frame), then frequency only; frequency halves each block.
REFERENCE_TIME_POOLS = (5, 1, 1)
REFERENCE_FREQ_POOLS = (2, 2, 2)


class DOAnetOutput(NamedTuple):
    """``doa (B, T', 3 · n_max)`` in [-1, 1] (not unit length), ``activity (B, T', n_max)`` logits or ``None``."""

    doa: torch.Tensor
    activity: torch.Tensor | None


def _mlp_head(in_features: int, width: int, layers: int, out_features: int) -> nn.Sequential:
    """``layers`` × (Linear ``width`` + ReLU) then a Linear to ``out_features``."""
    modules: list[nn.Module] = []
    for index in range(layers):
        modules += [nn.Linear(width if index else in_features, width), nn.ReLU()]
    modules.append(nn.Linear(width if layers else in_features, out_features))
    return nn.Sequential(*modules)


class DOAnet(nn.Module):
    """CRNN of (batch, channels, time, mel) features → :class:`DOAnetOutput` per label frame."""

    def __init__(
        self,
        in_channels: int = 7,
        n_mels: int = 64,
        n_max: int = 2,
        filters: int = 128,
        time_pools: Sequence[int] = REFERENCE_TIME_POOLS,
        freq_pools: Sequence[int] = REFERENCE_FREQ_POOLS,
        rnn_size: int = 128,
        rnn_layers: int = 2,
        fnn_size: int = 128,
        fnn_layers: int = 2,
        activity: bool = True,
        activity_tanh: bool = True,
    ) -> None:
        super().__init__()
        if len(time_pools) != len(freq_pools) or not freq_pools:
            raise ValueError("time_pools and freq_pools need one (equal, non-zero) entry per convolution block")
        freq_out = n_mels
        for pool in freq_pools:
            freq_out //= pool
        if freq_out < 1:
            raise ValueError(f"{n_mels} mel bins do not survive frequency pools {list(freq_pools)}")
        if min(in_channels, n_max, filters, rnn_size, rnn_layers) < 1:
            raise ValueError("in_channels, n_max, filters, rnn_size and rnn_layers must be positive")
        self.n_max = n_max
        self.time_pools = tuple(time_pools)
        self.activity_tanh = activity_tanh
        blocks: list[nn.Module] = []
        for index, (time_pool, freq_pool) in enumerate(zip(time_pools, freq_pools, strict=True)):
            blocks += [
                nn.Conv2d(filters if index else in_channels, filters, kernel_size=3, padding=1),
                nn.BatchNorm2d(filters),
                nn.ReLU(),
                nn.MaxPool2d((time_pool, freq_pool)),
            ]
        self.cnn = nn.Sequential(*blocks)
        self.gru = nn.GRU(filters * freq_out, rnn_size, num_layers=rnn_layers, batch_first=True, bidirectional=True)
        self.doa_head = _mlp_head(rnn_size, fnn_size, fnn_layers, 3 * n_max)
        self.activity_head = _mlp_head(rnn_size, fnn_size, fnn_layers, n_max) if activity else None

    def forward(self, features: torch.Tensor) -> DOAnetOutput:
        maps = self.cnn(features)  # (B, filters, T', F')
        frames = maps.transpose(1, 2).flatten(2)  # (B, T', filters · F'), filter-major as the reference
        recurrent, _ = self.gru(frames)
        recurrent = torch.tanh(recurrent)
        half = recurrent.shape[-1] // 2
        recurrent = recurrent[..., :half] * recurrent[..., half:]
        doa = torch.tanh(self.doa_head(recurrent))
        if self.activity_head is None:
            return DOAnetOutput(doa, None)
        activity = self.activity_head(recurrent)
        return DOAnetOutput(doa, torch.tanh(activity) if self.activity_tanh else activity)


def doa_tracks(doa: torch.Tensor, n_max: int) -> torch.Tensor:
    """``(…, 3 · n_max)`` in the reference layout ``[x…, y…, z…]`` → ``(…, n_max, 3)`` one xyz row per track."""
    return doa.unflatten(-1, (3, n_max)).transpose(-1, -2)


DOANET_MODELS: dict[str, Callable[..., nn.Module]] = {"doanet": DOAnet}

# Feature kind (seldflow.feature_kinds, whose channel count sizes the input) -> registry name of the networks the
# paper trains on it (default arguments, 64 mels).
REFERENCE_DOANETS: dict[str, str] = {"foa": "doanet", "mic": "doanet"}
# Parameter estimates from the reference architecture (its authors state none): FOA CNN 304 k + GRU 1.183 M +
# DOA head 34 k + activity head 33 k ≈ 1.554 M; MIC's 10 input channels add 3.5 k.
REFERENCE_PARAMETER_ESTIMATES: dict[str, int] = {"foa": 1_554_000, "mic": 1_557_000}


def build_doanet(name: str, **args: Any) -> nn.Module:
    """Instantiate the registered network ``name``; bad names or arguments are config errors."""
    return build_registered(DOANET_MODELS, name, source=CONFIG_SOURCE, section="", **args)


def doanet_parameters_on_meta(name: str, **args: Any) -> int:
    """Trainable parameters of one configuration, built on the ``meta`` device (shapes, no storage)."""
    with torch.device("meta"):
        return count_parameters(build_doanet(name, **args))


def doanet_parameter_breakdown(name: str, **args: Any) -> dict[str, int]:
    """Trainable parameters per part (``cnn``, ``gru``, ``doa_head``, ``activity_head``), counted on ``meta``."""
    with torch.device("meta"):
        model = build_doanet(name, **args)
    parts = {"cnn": model.cnn, "gru": model.gru, "doa_head": model.doa_head, "activity_head": model.activity_head}
    return {part: count_parameters(module) if module is not None else 0 for part, module in parts.items()}


# Keys every DOAnet checkpoint holds: the network, the input it expects and how its outputs are read.
DOANET_CHECKPOINT_KEYS = (
    "kind",
    "model_name",
    "model_args",
    "model_state",
    "feature_kind",
    "feature_settings",
    "scaler_mean",
    "scaler_std",
    "loss",
)
DOANET_KIND = "doanet"


def model_from_doanet_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The DOAnet of a training-stage checkpoint with its weights, in evaluation mode, and the checkpoint."""
    checkpoint = load_checkpoint(Path(path), DOANET_CHECKPOINT_KEYS)
    if checkpoint["kind"] != DOANET_KIND:
        raise InputError(path, f"holds a {checkpoint['kind']!r}, not a DOAnet", field="kind")
    try:
        model = build_doanet(checkpoint["model_name"], **checkpoint["model_args"])
        model.load_state_dict(checkpoint["model_state"])
    except (ConfigError, RuntimeError) as exc:
        raise InputError(path, f"weights do not fit the recorded network ({exc})", field="model_state") from None
    return model.eval(), checkpoint
