"""The label-queried ResUNet / ResUNetK separators, their -SNR losses and reference parameter counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seldflow.errors import ConfigError
from seldflow.models.separators import (
    REFERENCE_SEPARATORS,
    build_separator,
    reference_separator_parameter_counts,
)
from seldflow.s5.separation_loss import masked_slot_loss, pick_queries, single_query_loss, snr, take_slots
from seldflow.s5.vocabulary import LABELS, onehot_slots, pad_labels, source_mask

RATE = 8000
LENGTH = RATE // 2  # 0.5 s
TINY = {"n_fft": 256, "hop": 64, "channels": (8, 16, 32), "condition_size": 32}
# A logit far in the saturated range: sigmoid/tanh of it is 1 to within float32 resolution.
SATURATED = 30.0


pytestmark = pytest.mark.usefixtures("single_thread")


def tiny(name: str, **args) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_separator(name, in_channels=4, **TINY, **args)


def queries_for(*slot_labels: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, 18) one-hot queries and (B, 3) source masks from label lists, via the vocabulary's encodings."""
    padded = [pad_labels(labels) for labels in slot_labels]
    queries = np.stack([onehot_slots(labels) for labels in padded])
    masks = np.stack([source_mask(labels) for labels in padded])
    return torch.from_numpy(queries), torch.from_numpy(masks)


def mixture(batch: int = 2, length: int = LENGTH, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 4, length, generator=torch.Generator().manual_seed(seed))


def test_shapes_and_length_for_an_odd_sample_count() -> None:
    queries, masks = queries_for(("Speech", "Cough"), ("Blender",))
    x = mixture(length=LENGTH + 37)  # frames not a multiple of the time padding
    single, multi = tiny("resunet").eval(), tiny("resunetk").eval()
    with torch.no_grad():
        assert single(x, queries[:, 0]).shape == (2, 1, LENGTH + 37)
        assert single.separate(x, queries).shape == (2, 3, LENGTH + 37)
        assert multi(x, queries.reshape(2, 54)).shape == (2, 3, LENGTH + 37)
        assert multi.separate(x, queries, masks).shape == (2, 3, LENGTH + 37)


@pytest.mark.parametrize("name", ["resunet", "resunetk"])
def test_silent_slots_are_exactly_zero(name: str) -> None:
    queries, masks = queries_for(("Speech", "Cough"), ("Blender",))
    with torch.no_grad():
        out = tiny(name).eval().separate(mixture(), queries, masks)
    assert torch.count_nonzero(out[0, 2]) == 0
    assert torch.count_nonzero(out[1, 1:]) == 0
    assert out[0, 0].abs().max() > 0 and out[0, 1].abs().max() > 0 and out[1, 0].abs().max() > 0


def test_resunetk_derives_silence_from_zero_query_rows() -> None:
    queries, _ = queries_for(("Dishes",))
    with torch.no_grad():
        out = tiny("resunetk").eval()(mixture(batch=1), queries.reshape(1, 54))
    assert torch.count_nonzero(out[0, 1:]) == 0 and out[0, 0].abs().max() > 0


@pytest.mark.parametrize("name", ["resunet", "resunetk"])
def test_output_changes_with_the_label(name: str) -> None:
    model = tiny(name).eval()
    x = mixture(batch=1)
    with torch.no_grad():
        speech = model.separate(x, queries_for(("Speech",))[0])[0, 0]
        cough = model.separate(x, queries_for(("Cough",))[0])[0, 0]
    assert (speech - cough).abs().max() > 1e-3 * speech.abs().max()


def test_multi_predict_equals_one_query_at_a_time() -> None:
    model = tiny("resunet").eval()
    queries, _ = queries_for(("Speech", "Cough", "Pour"))
    x = mixture(batch=1)
    with torch.no_grad():
        batched = model.separate(x, queries)
        one_by_one = torch.cat([model(x, queries[:, slot]) for slot in range(3)], dim=1)
    torch.testing.assert_close(batched, one_by_one, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["resunet", "resunetk"])
def test_unity_mask_and_channel_zero_reproduce_channel_zero(name: str) -> None:
    """Mask layout (target, channel, component): magnitude mask 1, phase mask 1 + 0j, out_conv picking channel 0."""
    model = tiny(name).eval()
    n_targets, channels, components = model.n_targets, 4, 3
    with torch.no_grad():
        model.after_conv.weight.zero_()
        bias = torch.zeros(n_targets, channels, components)
        bias[:, :, 0] = SATURATED  # sigmoid -> 1: keep the magnitude
        bias[:, :, 1] = SATURATED  # tanh -> 1 (real), imaginary 0: no phase rotation
        model.after_conv.bias.copy_(bias.flatten())
        model.out_conv.weight.zero_()
        model.out_conv.weight[0, 0] = 1.0
        model.out_conv.bias.zero_()
    # Band-limited channels (tones well below Nyquist, whose bin the network zeroes), each channel different.
    t = torch.arange(LENGTH) / RATE
    x = torch.stack([torch.sin(2 * torch.pi * f * t + c) for c, f in enumerate((440.0, 1230.0, 2010.0, 3100.0))])[None]
    queries = torch.zeros(1, 3, len(LABELS))
    queries[0, :, [0, 5, 9]] = torch.eye(3)
    with torch.no_grad():
        out = model.separate(x, queries)
    # Within half a window of either end the reflect padding puts some energy into the zeroed Nyquist bin.
    edge = TINY["n_fft"] // 2
    for slot in range(3):
        torch.testing.assert_close(out[0, slot, edge:-edge], x[0, 0, edge:-edge], rtol=0, atol=3e-4)
        torch.testing.assert_close(out[0, slot], x[0, 0], rtol=0, atol=2e-3)


def test_unknown_separator_and_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError) as unknown:
        build_separator("convtasnet")
    assert unknown.value.key == "separator.model" and "resunetk" in unknown.value.message
    with pytest.raises(ConfigError) as bad:
        build_separator("resunet", in_channels=4, n_fft=200, channels=(8, 16, 32))
    assert bad.value.key == "separator.model_args" and "n_fft" in bad.value.message
    with pytest.raises(ConfigError) as unexpected:
        build_separator("resunet", kernel=5)
    assert unexpected.value.key == "separator.model_args"


def test_reference_parameter_counts_match_the_estimates() -> None:
    counts = reference_separator_parameter_counts()
    assert set(counts) == set(REFERENCE_SEPARATORS) == {"ResUNet", "ResUNetK"}
    assert counts["ResUNet"] == pytest.approx(26.72e6, rel=0.005)
    assert counts["ResUNetK"] == pytest.approx(26.74e6, rel=0.005)
    # Query width 54 vs 18 and after_conv 36 vs 12 outputs: (54 - 18) * 512 + (36 - 12) * 33 more in ResUNetK.
    assert counts["ResUNetK"] - counts["ResUNet"] == 36 * 512 + 24 * 33
    with torch.device("meta"):
        model = build_separator("resunet")
    assert len(model.film) == 38 and sum(layer.out_features for layer in model.film) == 9856


def numpy_snr(estimate: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The documented formula, in float64 with float32's epsilon."""
    eps = float(np.finfo(np.float32).eps)
    return 10 * np.log10((np.sum(target**2, -1) + eps) / (np.sum((target - estimate) ** 2, -1) + eps))


def test_snr_and_single_query_loss_match_hand_values() -> None:
    target = torch.tensor([[[3.0, 4.0, 0.0]], [[1.0, 0.0, 0.0]]])
    estimate = torch.tensor([[[3.0, 4.0, 5.0]], [[0.5, 0.0, 0.0]]])
    # |s|^2 = 25, |s - s_hat|^2 = 25 -> 0 dB; |s|^2 = 1, |noise|^2 = 0.25 -> 10 log10 4 = 6.0206 dB.
    torch.testing.assert_close(snr(estimate, target)[:, 0], torch.tensor([0.0, 6.0206]), rtol=0, atol=1e-4)
    assert single_query_loss(estimate, target).item() == pytest.approx(-(0.0 + 6.0206) / 2, abs=1e-4)


def test_masked_loss_matches_numpy_and_ignores_silent_slots() -> None:
    rng = np.random.default_rng(3)
    target = rng.standard_normal((2, 3, 50)).astype(np.float32)
    estimate = (target + 0.3 * rng.standard_normal((2, 3, 50))).astype(np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=np.float32)
    expected = -np.sum(numpy_snr(estimate.astype(np.float64), target.astype(np.float64)) * mask) / 6  # all 6 slots
    loss = masked_slot_loss(torch.from_numpy(estimate), torch.from_numpy(target), torch.from_numpy(mask))
    assert loss.item() == pytest.approx(expected, rel=1e-5)

    changed = torch.from_numpy(estimate).clone().requires_grad_(True)
    with torch.no_grad():
        changed[0, 2] += 100.0
        changed[1, 1:] = 0.0
    moved = masked_slot_loss(changed, torch.from_numpy(target), torch.from_numpy(mask))
    assert moved.item() == pytest.approx(loss.item(), rel=1e-6)
    moved.backward()
    assert torch.count_nonzero(changed.grad[0, 2]) == 0 and torch.count_nonzero(changed.grad[1, 1:]) == 0
    assert torch.count_nonzero(changed.grad[0, 0]) > 0


def test_pick_queries_draws_only_non_silent_slots_reproducibly() -> None:
    mask = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]]).repeat(50, 1)
    picks = pick_queries(mask, torch.Generator().manual_seed(7))
    assert torch.all(take_slots(mask, picks) == 1)
    assert set(picks[2::3].tolist()) == {0, 1, 2} and set(picks[1::3].tolist()) == {1, 2}
    assert torch.equal(picks, pick_queries(mask, torch.Generator().manual_seed(7)))
    with pytest.raises(ValueError, match="no non-silent slot"):
        pick_queries(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), torch.Generator())


def tone_batch(generator: torch.Generator, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two tones (500 Hz = class 0, 1800 Hz = class 1) with random gains and phases; one of them queried."""
    t = torch.arange(length) / RATE
    gains = 0.2 + 0.8 * torch.rand(batch, 2, 1, generator=generator)
    phases = 2 * torch.pi * torch.rand(batch, 2, 1, generator=generator)
    tones = gains * torch.sin(2 * torch.pi * torch.tensor([500.0, 1800.0])[None, :, None] * t + phases)
    query = torch.randint(0, 2, (batch,), generator=generator)
    target = take_slots(tones, query)
    return tones.sum(dim=1, keepdim=True), torch.nn.functional.one_hot(query, 2).float(), target


def test_tiny_resunet_learns_to_return_the_queried_tone() -> None:
    torch.manual_seed(0)
    model = build_separator(
        "resunet", in_channels=1, n_classes=2, n_fft=256, hop=64, channels=(8, 16), condition_size=16
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, amsgrad=True)
    generator = torch.Generator().manual_seed(0)
    length = RATE // 4
    held_out = tone_batch(torch.Generator().manual_seed(99), 16, length)

    def held_out_loss() -> float:
        # Batch statistics: the reference's BatchNorm momentum (0.01) leaves running statistics far behind after
        # a hundred steps, which would measure the statistics' lag rather than what the network learnt.
        with torch.no_grad():
            mix, query, target = held_out
            return single_query_loss(model(mix, query), target).item()

    before = held_out_loss()
    for _ in range(100):
        mix, query, target = tone_batch(generator, 8, length)
        loss = single_query_loss(model(mix, query), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = held_out_loss()
    # Returning the mixture scores about 0 dB against either tone; learning the query must clearly beat it.
    assert after < before - 8.0 and after < -8.0, (before, after)
