"""Training losses of the S5 separators: negative signal-to-noise ratio, for one query or for masked slots.

The SNR is the plain (not scale-invariant, not zero-mean) ratio the baseline trains with and CA-SDRi scores with,
``10 log10((|s|^2 + eps) / (|s - s_hat|^2 + eps))`` with ``eps`` the machine epsilon of the dtype (torchmetrics'
``signal_noise_ratio`` with ``zero_mean=False``). It is written out here rather than imported: the formula is one
line and torchmetrics would be a dependency for nothing else.
"""

from __future__ import annotations

import torch


def snr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SNR in dB of ``estimate`` against ``target`` over the last (sample) axis; leading axes are kept.

    A silent target with a silent estimate scores 0 dB (eps / eps), not NaN.
    """
    if estimate.shape != target.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} and target {tuple(target.shape)} differ in shape")
    eps = torch.finfo(estimate.dtype).eps
    signal = target.square().sum(dim=-1)
    noise = (target - estimate).square().sum(dim=-1)
    return 10.0 * torch.log10((signal + eps) / (noise + eps))


def single_query_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ResUNet loss: minus the SNR averaged over the batch; estimate and target (B, 1, N) or (B, N).

    Each mixture contributes the one non-silent source it was queried for (see :func:`pick_queries`).
    """
    return -snr(estimate, target).mean()


def masked_slot_loss(estimate: torch.Tensor, target: torch.Tensor, source_mask: torch.Tensor) -> torch.Tensor:
    """ResUNetK loss: minus the per-slot SNR times ``source_mask``, averaged over all B x S slots.

    estimate and target (B, S, N), source_mask (B, S) with 1 for a queried slot, 0 for silence. As in the
    reference, the mean runs over every slot, silent ones included as zero terms, not over the non-silent slots
    only: a batch with fewer sources weighs less, and a silent slot never moves the loss whatever its estimate.
    """
    if source_mask.shape != estimate.shape[:2]:
        raise ValueError(f"source_mask {tuple(source_mask.shape)} does not match slots {tuple(estimate.shape[:2])}")
    return -(snr(estimate, target) * source_mask).mean()


def pick_queries(source_mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One uniformly drawn non-silent slot per mixture: source_mask (B, S) -> slot indices (B,) int64.

    The ResUNet is trained on one query per mixture; the draw comes from the caller's seeded ``generator`` so a
    seed fixes the whole training run. Every mixture needs at least one non-silent slot.
    """
    active = source_mask.detach().to("cpu", torch.float64)
    empty = torch.nonzero(active.sum(dim=1) == 0).flatten()
    if len(empty):
        raise ValueError(f"mixtures {empty.tolist()} have no non-silent slot to query")
    return torch.multinomial(active, 1, generator=generator).flatten().to(source_mask.device)


def take_slots(slotted: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Row ``index[b]`` of every ``slotted[b]``: (B, S, ...) and (B,) -> (B, 1, ...), e.g. queried targets/queries."""
    return slotted[torch.arange(slotted.shape[0], device=slotted.device), index][:, None]
