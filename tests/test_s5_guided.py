"""The second-place Task 4 system's parts: frame labels, the SED, the guided separator, its weights and optimiser.

Expectations come from hand computation or from plain numpy re-statements of the documented operations (the
reference facts of the system), never from the modules' own output. Sizes are tiny: 8 kHz, half-second clips,
two U-Net levels, a stand-in detector of width 8.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seldflow.errors import ConfigError, InputError
from seldflow.models import resunet
from seldflow.models.guided import (
    DualPathRNN,
    EmbeddingInjection,
    GuidedResUNet,
    IterativeGuidedResUNet,
    audiosep_key_map,
    guided_parameter_groups,
    load_audiosep,
    tile_audiosep_state,
)
from seldflow.models.param_groups import check_partition, cosine_factor, cosine_with_warmup
from seldflow.models.resample import Resample
from seldflow.models.sed import attention_pool, build_sed, sed_loss, sed_parameter_groups, threshold_sweep
from seldflow.models.separators import build_separator
from seldflow.s5.vocabulary import LABELS, frame_count, frame_labels

RATE = 8000
LENGTH = RATE // 2
FRONT_END = {"sample_rate": RATE, "n_fft": 256, "hop_length": 64, "n_mels": 32, "fmin": 50.0, "fmax": 4000.0}
SED = {"model": "standin", "model_args": {"input_rate": RATE, "front_end": FRONT_END, "dim": 8, "depth": 2}}
UNET = {"n_fft": 128, "hop": 32, "channels": (8, 16), "condition_size": 16}
FULL = {"sed": SED, "injection": {}, "time_film": {}, "dprnn": {"hidden": 4}}


pytestmark = pytest.mark.usefixtures("single_thread")


def guided(name: str = "guided_resunet", seed: int = 0, **args) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_separator(name, in_channels=4, **{**UNET, **args})


def mixture(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 4, LENGTH, generator=torch.Generator().manual_seed(seed))


def query(*classes: str | None) -> torch.Tensor:
    """(B, 18) one-hot rows; None is a silent (all-zero) row."""
    rows = torch.zeros(len(classes), len(LABELS))
    for row, label in enumerate(classes):
        if label is not None:
            rows[row, LABELS.index(label)] = 1.0
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Frame labels


def test_frame_count_scales_with_duration() -> None:
    assert frame_count(10.0) == 250 and frame_count(2.0) == 50 and frame_count(0.5) == 12  # 12.5 rounds to even


def test_frame_labels_by_hand() -> None:
    labels = frame_labels({"Speech": [0.02, 0.5], "Cough": [9.99, 10.0], "Dishes": [3.0, 3.0]}, 10.0)
    assert labels.shape == (18, 250) and labels.dtype == np.float32
    speech, cough, dishes = (LABELS.index(name) for name in ("Speech", "Cough", "Dishes"))
    # Speech: round(0.5) = 0 (to even) up to round(12.5) = 12, exclusive
    assert np.flatnonzero(labels[speech]).tolist() == list(range(12))
    # Cough starts at frame round(249.75) = 250, clipped to the last frame, which it covers
    assert np.flatnonzero(labels[cough]).tolist() == [249]
    # a zero-length event still covers its first frame
    assert np.flatnonzero(labels[dishes]).tolist() == [75]
    assert labels.sum() == 12 + 1 + 1
    two_seconds = frame_labels({"Speech": [0.5, 1.5]}, 2.0)
    assert two_seconds.shape == (18, 50) and np.flatnonzero(two_seconds[speech]).tolist() == list(range(12, 38))


def test_frame_labels_name_an_unknown_class() -> None:
    with pytest.raises(InputError, match="Engine"):
        frame_labels({"Engine": [0.0, 1.0]}, 10.0, source="soundscape_00001.json")


# ---------------------------------------------------------------------------------------------------------------
# Sound event detector


def test_weak_is_the_softmax_weighted_mean_of_strong() -> None:
    rng = np.random.default_rng(0)
    strong = rng.uniform(size=(2, 7, 3))
    logits = rng.normal(scale=3.0, size=(2, 7, 3))
    for axis, name in ((1, "time"), (2, "classes")):
        weights = np.exp(logits) / np.exp(logits).sum(axis=axis, keepdims=True)
        weights = np.clip(weights, 1e-7, 1.0)
        expected = (strong * weights).sum(axis=1) / weights.sum(axis=1)
        pooled = attention_pool(torch.from_numpy(strong), torch.from_numpy(logits), name)
        np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-12)
    # equal logits over time: the plain mean of the frames; one dominant frame: that frame
    flat = attention_pool(torch.from_numpy(strong), torch.zeros(2, 7, 3, dtype=torch.float64), "time")
    np.testing.assert_allclose(flat.numpy(), strong.mean(axis=1), rtol=1e-12)
    peaked = torch.zeros(2, 7, 3, dtype=torch.float64)
    peaked[:, 4] = 50.0
    np.testing.assert_allclose(attention_pool(torch.from_numpy(strong), peaked).numpy(), strong[:, 4], atol=1e-5)


def test_the_detector_pools_its_own_frames() -> None:
    torch.manual_seed(0)
    sed = build_sed(SED["model"], **SED["model_args"]).eval()
    seen = {}
    sed.weak_head.register_forward_hook(lambda module, args, out: seen.update(weak_logits=out))
    with torch.no_grad():
        out = sed(mixture(), hidden=True)
    assert out.strong_logits.shape == (2, 18, frame_count(LENGTH / RATE))
    strong = torch.sigmoid(out.strong_logits).transpose(1, 2).numpy().astype(np.float64)
    logits = seen["weak_logits"].numpy().astype(np.float64)
    weights = np.clip(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 1e-7, 1.0)
    np.testing.assert_allclose(out.weak.numpy(), (strong * weights).sum(1) / weights.sum(1), rtol=1e-5)
    assert len(out.hidden) == 3 and {h.shape[:2] for h in out.hidden} == {(2, 8)}


def test_sed_loss_by_hand() -> None:
    from seldflow.models.sed import SEDOutput

    output = SEDOutput(strong_logits=torch.zeros(1, 2, 4), weak=torch.tensor([[0.8, 0.1]]))
    frames = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    weak = -(math.log(0.8) + math.log(0.9)) / 2
    strong = math.log(2.0)  # every logit is 0: -log(sigmoid(0)) = -log(1 - sigmoid(0)) = log 2
    loss = sed_loss(output, torch.tensor([[1.0, 0.0]]), frames)
    assert float(loss) == pytest.approx(0.5 * weak + 0.5 * strong, rel=1e-6)
    assert float(sed_loss(output, torch.tensor([[1.0, 0.0]]), frames, weak_weight=1.0)) == pytest.approx(weak)


def test_m2d_hidden_maps_hold_the_patch_tokens_time_major() -> None:
    torch.manual_seed(0)
    sed = build_sed("m2d", input_rate=16000, embed_dim=8, depth=2, num_heads=2).eval()
    with torch.no_grad():
        out = sed(torch.randn(1, 16000 * 10), hidden=True)
        lms = sed.front_end(torch.randn(1, 16000 * 10))
        tokens: list[torch.Tensor] = []
        sed.backbone.encode_unit(lms, tokens)
        _, maps = sed.backbone.forward_hidden(lms)
    assert out.strong_logits.shape == (1, 18, 250)
    assert len(out.hidden) == 3 and out.hidden[0].shape == (1, 8, 62, 5)  # 62 time x 5 frequency patches
    assert torch.equal(tokens[0], sed.backbone.patch_embed(lms))  # the patch embedding, before positions
    for layer, map_ in zip(tokens, maps, strict=True):
        for time, freq in ((0, 0), (7, 3), (61, 4)):
            assert torch.equal(map_[0, :, time, freq], layer[0, freq * 62 + time])  # frequency-major tokens


def test_an_m2d_sed_checkpoint_loads_into_the_stage_two_detector(tmp_path) -> None:
    """A PretrainedSED-style file (encoder under ``model.backbone.``, its own heads) fills the backbone only."""
    from seldflow.models.guided import load_guided_pretrained

    sed_args = {"input_rate": 16000, "embed_dim": 8, "depth": 2, "num_heads": 2}
    torch.manual_seed(1)
    source = build_sed("m2d", **sed_args)
    stored = {f"model.backbone.{k}": v for k, v in source.backbone.state_dict().items()}
    stored["strong_head.weight"] = torch.randn(447, 40)  # AudioSet-strong heads: not loaded
    torch.save(stored, tmp_path / "m2d_strong.pt")
    model = guided(sed={"model": "m2d", "model_args": sed_args}, time_film={})
    heads = model.sed.strong_head.weight.clone()
    summary = load_guided_pretrained(model, sed_checkpoint=tmp_path / "m2d_strong.pt")
    assert summary["sed"]["loaded"] == len(source.backbone.state_dict())
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(model.sed.backbone.state_dict()[key], value), key
    assert torch.equal(model.sed.strong_head.weight, heads)


def test_layer_decay_groups_by_hand() -> None:
    torch.manual_seed(0)
    sed = build_sed(SED["model"], **{**SED["model_args"], "depth": 3})
    groups = sed_parameter_groups(sed, lr=1e-3, layer_decay=0.8, weight_decay=0.05)
    check_partition(sed, groups)
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    expected = {"strong_head": 1e-3, "weak_head": 1e-3, "backbone.stem": 1e-3 * 0.8**3}
    expected.update({f"backbone.blocks.{k}": 1e-3 * 0.8 ** (3 - k) for k in range(3)})
    for name, p in sed.named_parameters():
        prefix = next(prefix for prefix in expected if name.startswith(prefix))
        assert rate[id(p)] == pytest.approx(expected[prefix]), name
        assert decay[id(p)] == (0.05 if p.ndim >= 2 else 0.0), name
    m2d = build_sed("m2d", input_rate=16000, embed_dim=8, depth=2, num_heads=2)
    rates = {id(p): g["lr"] for g in sed_parameter_groups(m2d, 1e-3, 0.8) for p in g["params"]}
    backbone = m2d.backbone
    for p in (
        backbone.cls_token,
        backbone.pos_embed,
        backbone.patch_embed.proj.weight,
        *backbone.blocks[0].parameters(),
    ):
        assert rates[id(p)] == pytest.approx(1e-3 * 0.64)
    for p in (*backbone.blocks[1].parameters(), *backbone.norm.parameters()):
        assert rates[id(p)] == pytest.approx(1e-3 * 0.8)


def test_threshold_sweep_by_hand() -> None:
    probs = np.zeros((3, 18))
    probs[0, [0, 1]] = [0.95, 0.45]  # reference {0, 1}
    probs[1, [2]] = [0.25]  # reference {2}: top-1 fallback finds it at every threshold
    probs[2, [3, 4, 5, 6]] = [0.9, 0.8, 0.7, 0.6]  # reference {3, 4, 5}: at most three are taken
    refs = [(LABELS[0], LABELS[1], "silence"), (LABELS[2], "silence", "silence"), (LABELS[3], LABELS[4], LABELS[5])]
    sweep = threshold_sweep(probs, refs, thresholds=(0.1, 0.4, 0.5, 0.65, 0.75))
    # 0.5 and 0.65 drop class 1 of the first clip; 0.75 also class 5 of the third
    assert sweep == pytest.approx({0.1: 100.0, 0.4: 100.0, 0.5: 200 / 3, 0.65: 200 / 3, 0.75: 100 / 3})


def test_resampler_keeps_tones_and_removes_aliases() -> None:
    def tone(rate: int, hz: float, seconds: float = 0.5) -> torch.Tensor:
        return torch.sin(2 * math.pi * hz * torch.arange(int(rate * seconds), dtype=torch.float64) / rate)

    down = Resample(32000, 16000)
    out = down(tone(32000, 1000.0)[None].float())[0]
    assert out.shape == (8000,)
    np.testing.assert_allclose(out[300:-300].numpy(), tone(16000, 1000.0)[300:-300].numpy(), atol=1e-4)
    for hz, limit in ((12000.0, 1e-2), (14000.0, 1e-5)):  # above the new Nyquist frequency: filtered out
        alias = down(tone(32000, hz)[None].float())[0]
        assert alias[300:-300].abs().max() < limit
    up = Resample(8000, 16000)(tone(8000, 700.0)[None].float())[0]
    np.testing.assert_allclose(up[300:-300].numpy(), tone(16000, 700.0)[300:-300].numpy(), atol=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# Time-FiLM


def _linear_resize(values: np.ndarray, size: int) -> np.ndarray:
    """Half-pixel linear resampling along the last axis (bilinear with align_corners=False on an (T, 1) map)."""
    length = values.shape[-1]
    source = np.clip((np.arange(size) + 0.5) * length / size - 0.5, 0.0, None)
    low = np.minimum(np.floor(source).astype(int), length - 1)
    high = np.minimum(low + 1, length - 1)
    frac = source - low
    return values[..., low] * (1 - frac) + values[..., high] * frac


def test_time_film_rows_are_the_queried_class_and_zero_for_silence() -> None:
    model = guided(**FULL)
    logits = torch.randn(3, 18, 12)
    q = query("Speech", None, "Blender")
    rows = model.time_film.query_rows(logits, q)
    assert torch.equal(rows[0], logits[0, LABELS.index("Speech")])
    assert torch.equal(rows[2], logits[2, LABELS.index("Blender")])
    assert not rows[1].any()
    maps = model.time_film.maps(logits, q, model.film)
    assert len(maps) == len(model.film)
    for layer, map_ in zip(model.film, maps, strict=True):
        assert map_.shape == (3, layer.out_features, 12, 1)
        assert not map_[1].any()  # silence: no time conditioning at all
    # shared layers: the class FiLM linears read the per-frame embedding of the row
    embedded = model.time_film.embedding(rows[0][:, None])
    np.testing.assert_allclose(
        maps[5][0, :, :, 0].detach().numpy(), model.film[5](embedded).T.detach().numpy(), rtol=1e-6
    )
    separate = guided(**{**FULL, "time_film": {"layers": "separate"}})
    assert len(separate.time_film.film) == len(separate.film)
    assert all(a is not b for a, b in zip(separate.time_film.film, separate.film, strict=True))


def test_time_film_maps_are_resized_to_every_levels_time_axis(monkeypatch: pytest.MonkeyPatch) -> None:
    model = guided(**FULL).eval()
    x, q = mixture(batch=1), query("Speech")
    sed_frames = frame_count(LENGTH / RATE)  # 12
    padded = math.ceil((LENGTH // 32 + 1) / 2) * 2  # STFT frames (126) padded to the time pooling multiple
    resized = []
    original = resunet.fit_time

    def recording(condition: torch.Tensor, frames: int) -> torch.Tensor:
        out = original(condition, frames)
        if condition.shape[2] == sed_frames:
            resized.append(frames)
            np.testing.assert_allclose(
                out[..., 0].detach().numpy(), _linear_resize(condition[..., 0].detach().numpy(), frames), atol=1e-5
            )
        return out

    monkeypatch.setattr(resunet, "fit_time", recording)
    with torch.no_grad():
        model(x, q)
    half = padded // 2
    # encoder level 1 (2 norms), level 2, bottleneck, decoder 1 (input, then after its (1, 2) upsampling),
    # decoder 2 (input, then after its (2, 2) upsampling); the decoders' spare norms take no bias
    assert resized == [padded, padded, half, half, half, half, half, half, half, half, padded, padded]


def test_additive_time_film_adds_to_the_class_bias_multiplicative_gates() -> None:
    x, q = mixture(batch=1), query("Cough")
    for mode in ("additive", "multiplicative"):
        model = guided(**{**FULL, "time_film": {"mode": mode}}).eval()
        with torch.no_grad():
            guidance = model.guide(x, q)
            classes = model.film_biases(q)
            maps = model.group_by_level(model.time_film.maps(model.run_sed(x).strong_logits, q, model.film))
        for level_bias, level_class, level_map in zip(guidance.biases, classes, maps, strict=True):
            for bias, class_bias, time_map in zip(level_bias, level_class, level_map, strict=True):
                expected = class_bias + time_map if mode == "additive" else class_bias
                assert torch.allclose(bias, expected)
        assert (guidance.gates is None) == (mode == "additive")


# ---------------------------------------------------------------------------------------------------------------
# Embedding injection and DPRNN


def test_injection_weights_sum_to_one_and_w2_zero_gives_the_standardised_bottleneck() -> None:
    torch.manual_seed(0)
    injection = EmbeddingInjection(n_layers=4, dim=6, channels=5, merge="add").eval()
    assert torch.allclose(injection.mixing_weights(), torch.full((4,), 0.25))
    with torch.no_grad():
        injection.layer_weights.copy_(torch.tensor([0.3, -1.0, 2.0, 0.0]))
    assert float(injection.mixing_weights().detach().sum()) == pytest.approx(1.0)
    bottleneck = torch.randn(2, 5, 7, 3) * 4.0 + 2.0
    hidden = [torch.randn(2, 6, 11, 4) for _ in range(4)]
    with torch.no_grad():
        injection.feature_weight.zero_()
        merged = injection(bottleneck, hidden)
    b = bottleneck.numpy().astype(np.float64)
    expected = (b - b.mean(axis=(2, 3), keepdims=True)) / (b.std(axis=(2, 3), ddof=1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(merged.numpy(), expected, rtol=1e-4, atol=1e-5)
    concat = EmbeddingInjection(n_layers=4, dim=6, channels=5, merge="concat")
    assert concat(bottleneck, hidden).shape == bottleneck.shape


def test_injected_features_are_the_weighted_layer_sum_resized() -> None:
    torch.manual_seed(0)
    injection = EmbeddingInjection(n_layers=3, dim=2, channels=2).eval()
    hidden = [torch.full((1, 2, 4, 2), float(k + 1)) for k in range(3)]  # constant maps 1, 2, 3
    with torch.no_grad():
        injection.layer_weights.copy_(torch.log(torch.tensor([0.2, 0.3, 0.5])))
        injection.project.weight.copy_(torch.eye(2)[:, :, None, None])
        injection.project.bias.zero_()
        features = injection.features(hidden, (3, 5))
    mixed = 0.2 * 1 + 0.3 * 2 + 0.5 * 3  # 2.3 everywhere; BN at its initial statistics (mean 0, var 1)
    assert features.shape == (1, 2, 3, 5)
    assert torch.allclose(features, torch.full_like(features, mixed / math.sqrt(1 + 1e-5)), atol=1e-6)


def test_dprnn_keeps_the_shape_and_passes_gradients() -> None:
    torch.manual_seed(0)
    dprnn = DualPathRNN(6, hidden=4, blocks=2, rnn_layers=2, dropout=0.1)
    x = torch.randn(2, 6, 5, 3, requires_grad=True)
    y = dprnn(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in dprnn.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert all(p.grad.abs().sum() > 0 for p in dprnn.parameters())


@pytest.mark.parametrize("position", ["pre", "post"])
def test_dprnn_sits_before_or_after_the_injection(position: str) -> None:
    model = guided(**{**FULL, "dprnn": {"hidden": 4, "position": position}}).eval()
    calls = []
    model.dprnn.register_forward_hook(lambda module, args, out: calls.append(("dprnn", args[0])))
    model.injection.register_forward_hook(lambda module, args, out: calls.append(("injection", out)))
    with torch.no_grad():
        model(mixture(batch=1), query("Speech"))
    order = [name for name, _ in calls]
    assert order == (["dprnn", "injection"] if position == "pre" else ["injection", "dprnn"])
    if position == "post":
        assert torch.equal(calls[1][1], calls[0][1])  # DPRNN reads the merged bottleneck


# ---------------------------------------------------------------------------------------------------------------
# Iterative refinement


def _iterative_twin(seed: int = 0, **args) -> tuple[GuidedResUNet, IterativeGuidedResUNet]:
    plain = guided(seed=seed, **FULL)
    iterative = guided("guided_resunet_iterative", seed=seed + 1, **FULL, **args)
    assert not iterative.pre_conv.weight[:, 4:].any()  # the feedback input starts with zero weights
    state = dict(plain.state_dict())
    state["pre_conv.weight"] = torch.cat((plain.pre_conv.weight, iterative.pre_conv.weight[:, 4:]), dim=1)
    missing, unexpected = iterative.load_state_dict(state, strict=False)
    assert not unexpected and {k.split(".")[0] for k in missing} == {"bn0_fb", "iteration_draws"}
    return plain, iterative


def test_first_iterative_pass_equals_the_non_iterative_model_at_zero_init() -> None:
    plain, iterative = _iterative_twin(max_iterations=3)
    x, q = mixture(), query("Speech", "Dishes")
    for train in (True, False):
        plain.train(train)
        iterative.train(train)
        with torch.no_grad():
            torch.manual_seed(3)  # the same GRU dropout draws in training mode
            first = iterative(x, q, n_iter=1)
            torch.manual_seed(3)
            assert torch.allclose(first, plain(x, q), atol=1e-6)


def test_iteration_counts_are_seeded_and_within_range() -> None:
    model = guided("guided_resunet_iterative", **FULL, max_iterations=3, iteration_seed=7).train()
    draws = [model.draw_iterations() for _ in range(60)]
    assert set(draws) == {1, 2, 3}
    assert int(model.state_dict()["iteration_draws"]) == 60  # the counter travels with a checkpoint
    model.iteration_draws.zero_()
    assert [model.draw_iterations() for _ in range(60)] == draws
    passes = []
    original = model.run_pass
    model.run_pass = lambda *args, **kwargs: passes.append(1) or original(*args, **kwargs)
    with torch.no_grad():
        model.eval()
        model(mixture(batch=1), query("Speech"))
    assert len(passes) == 3  # evaluation: max_iterations passes


def test_gradients_flow_only_through_the_last_pass() -> None:
    model = guided("guided_resunet_iterative", **FULL, max_iterations=4).train()
    seen = []
    original = model.run_pass

    def recording(spectra, length, guidance, source_mask, feedback=None):
        seen.append((torch.is_grad_enabled(), feedback is not None and feedback.requires_grad))
        return original(spectra, length, guidance, source_mask, feedback)

    model.run_pass = recording
    out = model(mixture(), query("Speech", "Cough"), n_iter=3)
    assert seen == [(False, False), (False, False), (True, False)]
    assert out.requires_grad
    out.square().mean().backward()
    assert model.pre_conv.weight.grad[:, 4].abs().sum() > 0  # the last pass saw a real (non-zero) feedback
    seen.clear()
    model(mixture(), query("Speech", "Cough"))  # drawn count
    assert 1 <= len(seen) <= 4 and [grad for grad, _ in seen] == [False] * (len(seen) - 1) + [True]


# ---------------------------------------------------------------------------------------------------------------
# Stage-2 SED switch, inference


def test_frozen_sed_stays_in_eval_mode_and_untouched() -> None:
    model = guided(**{**FULL, "sed": {**SED, "trainable": False}}).train()
    assert not model.sed.training and not any(p.requires_grad for p in model.sed.parameters())
    statistics = [b.clone() for b in model.sed.buffers()]
    model(mixture(), query("Speech", "Cough")).square().mean().backward()
    assert all(p.grad is None for p in model.sed.parameters())
    assert all(torch.equal(a, b) for a, b in zip(statistics, model.sed.buffers(), strict=True))
    trainable = guided(**FULL).train()
    assert trainable.sed.training
    trainable(mixture(), query("Speech", "Cough")).square().mean().backward()
    assert trainable.sed.backbone.stem[0].weight.grad.abs().sum() > 0
    assert trainable.sed.strong_head.weight.grad is None  # heads frozen by default, as in the reference


def test_separate_runs_the_detector_once_per_mixture() -> None:
    model = guided("guided_resunet_iterative", **FULL, max_iterations=2).eval()
    calls = []
    model.sed.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    x = mixture()
    queries = torch.stack([query("Speech", "Cough"), query(None, "Blender"), query("Dishes", None)], dim=1)
    with torch.no_grad():
        together = model.separate(x, queries)
        one_by_one = torch.stack([model(x, queries[:, slot]) for slot in range(3)], dim=1)[:, :, 0]
    assert calls[0] == 2  # the two mixtures, not the six queries
    assert together.shape == (2, 3, LENGTH)
    assert torch.allclose(together, one_by_one, rtol=1e-5, atol=1e-5)
    assert not together[0, 1].any() and not together[1, 2].any()  # the silent slots


# ---------------------------------------------------------------------------------------------------------------
# Optimiser groups and schedule


def test_parameter_groups_partition_the_trainable_parameters_at_their_rates() -> None:
    sed = {**SED, "train_heads": True}
    model = guided(**{**FULL, "sed": sed, "time_film": {"layers": "separate"}})
    groups = guided_parameter_groups(model, weight_decay=0.01)
    check_partition(model, groups)
    listed = [id(p) for g in groups for p in g["params"]]
    assert len(listed) == len(set(listed)) == sum(1 for p in model.parameters() if p.requires_grad)
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    expected = {
        "encoder.": 2e-4,
        "bottleneck.": 2e-4,
        "decoder.": 2e-4,
        "film.": 2e-4,
        "dprnn.": 5e-4,
        "sed.strong_head.": 4e-4,
        "sed.weak_head.": 4e-4,
        "sed.backbone.blocks.1.": 4e-4 * 0.9,
        "sed.backbone.blocks.0.": 4e-4 * 0.81,
        "sed.backbone.stem.": 4e-4 * 0.81,
    }
    new = ("bn0.", "pre_conv.", "after_conv.", "out_conv.", "label_embedding.", "time_film.", "injection.")
    expected.update(dict.fromkeys(new, 1e-3))
    for name, p in model.named_parameters():
        prefix = next(prefix for prefix in expected if name.startswith(prefix))
        assert rate[id(p)] == pytest.approx(expected[prefix]), name
    for group in groups:
        assert group["weight_decay"] == (0.01 if all(p.ndim >= 2 for p in group["params"]) else 0.0)
    frozen = guided(**{**FULL, "sed": {**SED, "trainable": False}})
    frozen_groups = guided_parameter_groups(frozen)
    check_partition(frozen, frozen_groups)
    assert not any(g["name"].startswith("sed") for g in frozen_groups)


def test_cosine_schedule_with_warmup_by_hand() -> None:
    assert [cosine_factor(s, 10, 110) for s in (0, 5, 10, 60, 110, 200)] == pytest.approx([0, 0.5, 1, 0.5, 0, 0])
    weights = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.AdamW([{"params": [weights[0]], "lr": 1e-3}, {"params": [weights[1]], "lr": 2e-4}])
    schedule = cosine_with_warmup(optimizer, warmup_steps=4, total_steps=8)
    rates = []
    for _ in range(8):
        rates.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    assert [r[0] for r in rates] == pytest.approx(
        [
            0,
            2.5e-4,
            5e-4,
            7.5e-4,
            1e-3,
            1e-3 * (1 + math.cos(math.pi / 4)) / 2,
            5e-4,
            1e-3 * (1 + math.cos(3 * math.pi / 4)) / 2,
        ]
    )
    assert rates[4][1] == pytest.approx(2e-4) and rates[2][1] == pytest.approx(1e-4)


# ---------------------------------------------------------------------------------------------------------------
# AudioSep initialisation


def _synthetic_audiosep(model: GuidedResUNet) -> dict[str, torch.Tensor]:
    """A mono AudioSep state dict for the model's U-Net: its names, random values, 1-channel pre_conv, 3-row
    after_conv, and keys AudioSep has beyond the U-Net."""
    generator = torch.Generator().manual_seed(5)
    ours = model.state_dict()
    state = {}
    for key, name in audiosep_key_map(model).items():
        shape = list(ours[key].shape)
        if key == "pre_conv.weight":
            shape[1] = 1
        if key.startswith("after_conv."):
            shape[0] = 3
        value = torch.randn(shape, generator=generator) if ours[key].is_floating_point() else ours[key].clone()
        state[f"ss_model.{name}"] = value
    state["ss_model.base.stft.conv_real.weight"] = torch.randn(3, 1, 8)
    state["query_encoder.model.weight"] = torch.randn(4)
    return state


def test_audiosep_weights_are_tiled_to_four_channels_and_feedback(tmp_path) -> None:
    model = guided("guided_resunet_iterative", **FULL)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    audiosep = _synthetic_audiosep(model)
    path = tmp_path / "audiosep.ckpt"
    torch.save({"state_dict": audiosep, "epoch": 3}, path)
    summary = load_audiosep(model, path)
    state = model.state_dict()
    # names by hand: level k of the U-Net is AudioSep's block k + 1; its FiLM layers are named by module path
    pairs = {
        "encoder.0.block.conv1.weight": "base.encoder_block1.conv_block1.conv1.weight",
        "encoder.1.block.shortcut.bias": "base.encoder_block2.conv_block1.shortcut.bias",
        "bottleneck.block.bn2.running_var": "base.conv_block7a.conv_block1.bn2.running_var",
        "decoder.0.up.weight": "base.decoder_block1.conv1.weight",
        "decoder.1.spare_bn.weight": "base.decoder_block2.bn2.weight",
        "decoder.1.block.conv2.weight": "base.decoder_block2.conv_block2.conv2.weight",
        "bn0.running_mean": "base.bn0.running_mean",
        "film.0.weight": "film.encoder_block1->conv_block1->beta1.weight",
        "film.5.bias": "film.conv_block7a->conv_block1->beta2.bias",
        "film.7.weight": "film.decoder_block1->beta2.weight",
        "film.13.bias": "film.decoder_block2->conv_block2->beta2.bias",
    }
    for ours, theirs in pairs.items():
        assert torch.equal(state[ours], audiosep[f"ss_model.{theirs}"]), ours
    mono = audiosep["ss_model.base.pre_conv.weight"]
    for channel in range(4):
        assert torch.allclose(state["pre_conv.weight"][:, channel : channel + 1], mono / 4)
    assert not state["pre_conv.weight"][:, 4].any()
    for row in range(12):  # 4 channels x 3 mask components, the components repeating
        assert torch.equal(state["after_conv.weight"][row], audiosep["ss_model.base.after_conv.weight"][row % 3])
        assert state["after_conv.bias"][row] == audiosep["ss_model.base.after_conv.bias"][row % 3]
    for key in fresh:
        if key.split(".")[0] in ("out_conv", "label_embedding", "sed", "injection", "time_film", "dprnn", "bn0_fb"):
            assert torch.equal(state[key], fresh[key]), key
    assert {"out_conv", "label_embedding"} <= set(summary["fresh"])
    # four identical channels through the tiled input convolution give AudioSep's mono response
    x = torch.randn(1, 1, 5, 6)
    tiled = torch.nn.functional.conv2d(torch.cat([x] * 4 + [torch.zeros_like(x)], dim=1), state["pre_conv.weight"])
    assert torch.allclose(tiled, torch.nn.functional.conv2d(x, mono), atol=1e-6)


def test_audiosep_checkpoint_problems_name_the_file(tmp_path) -> None:
    model = guided(**FULL)
    audiosep = _synthetic_audiosep(model)
    del audiosep["ss_model.base.encoder_block1.conv_block1.conv1.weight"]
    with pytest.raises(InputError, match=r"encoder_block1\.conv_block1\.conv1\.weight"):
        tile_audiosep_state(model, audiosep, "audiosep.ckpt")
    with pytest.raises(InputError, match="not found"):
        load_audiosep(model, tmp_path / "missing.ckpt")


# ---------------------------------------------------------------------------------------------------------------
# Configuration errors


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("guided_resunet", {"injection": {}}, "need a Stage-2 SED"),
        ("guided_resunet", {"time_film": {"mode": "additive"}}, "need a Stage-2 SED"),
        ("guided_resunet", {"sed": SED}, "guides only through"),
        ("guided_resunet", {"sed": SED, "injection": {"merge": "mean"}}, "injection.merge must be one of add, concat"),
        ("guided_resunet", {"sed": SED, "time_film": {"mode": "gain"}}, "time_film.mode"),
        ("guided_resunet", {"sed": SED, "time_film": {"layers": "both"}}, "time_film.layers"),
        ("guided_resunet", {"dprnn": {"position": "middle"}}, "dprnn.position"),
        ("guided_resunet", {"sed": SED, "injection": {"weights": 1}}, "unknown injection setting 'weights'"),
        ("guided_resunet_iterative", {"max_iterations": 0}, "max_iterations must be an integer of at least 1"),
    ],
)
def test_bad_options_are_config_errors(name: str, args: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        guided(name, **args)
    assert caught.value.key == "separator.model_args"


def test_an_unknown_detector_names_its_key() -> None:
    with pytest.raises(ConfigError, match="unknown sound event detector 'beats'") as caught:
        guided(sed={"model": "beats"}, injection={})
    assert caught.value.key == "separator.model_args.sed.model"
