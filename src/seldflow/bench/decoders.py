"""BiMamba versus Conformer: CPU time of one training step of the zoo's two CNN14 decoders.

The decoders alone, without the CNN14 encoder, at their reference configuration: the figure compares the sequence
models, not the shared front end.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from typing import Any

from seldflow.bench.records import Comparison
from seldflow.bench.timing import median_times


def reference_decoders(d_model: int = 2048) -> dict[str, Callable[[], Any]]:
    """Factories of the zoo's BiMamba and Conformer decoders at their reference configuration for width ``d_model``."""
    from seldflow.models.conformer import conformer
    from seldflow.models.mamba import bimamba_decoder

    return {"BiMamba": lambda: bimamba_decoder(d_model), "Conformer": lambda: conformer(d_model)}


def compare_decoders(
    *,
    d_model: int = 2048,
    length: int = 32,
    batch: int = 4,
    repeats: int = 3,
    warmup: int = 1,
    seed: int = 0,
    factories: Mapping[str, Callable[[], Any]] | None = None,
) -> Comparison:
    """CPU time of one training-mode forward + backward pass, BiMamba vs Conformer decoder; ratio BiMamba/Conformer.

    Both decoders map ``(batch, length, d_model)`` to the same shape; the loss is the mean square of the output,
    gradients are cleared before each pass and no optimiser step is taken. ``factories`` (names ``BiMamba`` and
    ``Conformer``) default to :func:`reference_decoders`.
    """
    import torch

    factories = factories or reference_decoders(d_model)
    torch.manual_seed(seed)
    decoders = {name: factories[name]().train() for name in ("BiMamba", "Conformer")}
    x = torch.randn(batch, length, d_model, generator=torch.Generator().manual_seed(seed))

    def step(decoder: torch.nn.Module) -> Callable[[], None]:
        def call() -> None:
            decoder.zero_grad(set_to_none=True)
            decoder(x).square().mean().backward()

        return call

    sizes = {name: sum(p.numel() for p in d.parameters()) for name, d in decoders.items()}
    timed = median_times({name: step(d) for name, d in decoders.items()}, repeats=repeats, warmup=warmup)
    del decoders
    gc.collect()
    return Comparison(
        name="decoders (CPU fwd+bwd)",
        work=f"forward + backward, d {d_model}, {length} steps, batch {batch}; median of {repeats}, {warmup} warm-up",
        a_label=f"BiMamba ({sizes['BiMamba'] / 1e6:.1f} M parameters)",
        a_seconds=timed["BiMamba"],
        b_label=f"Conformer ({sizes['Conformer'] / 1e6:.1f} M parameters)",
        b_seconds=timed["Conformer"],
        meaning="BiMamba time / Conformer time (>1: BiMamba slower)",
    )
