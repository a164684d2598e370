"""S5 tagger: selection rule, log-mel front end, M2D encoder, fine-tuning stages, M2D weight loading, stand-in fit.

Expectations come from hand computation, from librosa (the mel filterbank the reference's nnAudio reproduces), or
from plain functional re-statements of the documented M2D runtime written here, never from the module's output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seldflow.errors import ConfigError, InputError
from seldflow.models.taggers import (
    build_tagger,
    load_m2d_weights,
    parameter_counts,
    set_train_mode,
    trainable_parameters,
)
from seldflow.s5.tagging import LogMel, select_labels, select_labels_batch
from seldflow.s5.vocabulary import LABELS, SILENCE, multihot

# ---------------------------------------------------------------------------------------------------------------
# Selection rule (_get_top_prob, pthre 0.5, nevent_range [1, 3]; labels read off a multi-hot in class order)


def _probs(values: dict[int, float], floor: float = 0.1) -> np.ndarray:
    probs = np.full(len(LABELS), floor)
    for index, value in values.items():
        probs[index] = value
    return probs


def test_selection_keeps_classes_above_threshold_in_class_order():
    assert select_labels(_probs({5: 0.9, 2: 0.6})) == (LABELS[2], LABELS[5], SILENCE)


def test_selection_includes_probability_exactly_at_threshold():
    assert select_labels(_probs({3: 0.5, 11: 0.49})) == (LABELS[3], SILENCE, SILENCE)


def test_selection_falls_back_to_top_one_when_none_reaches_threshold():
    assert select_labels(_probs({7: 0.4, 1: 0.3})) == (LABELS[7], SILENCE, SILENCE)


def test_selection_keeps_the_three_most_probable_of_many():
    probs = _probs({0: 0.6, 4: 0.95, 9: 0.7, 12: 0.8, 17: 0.55})
    assert select_labels(probs) == (LABELS[4], LABELS[9], LABELS[12])


def test_selection_breaks_ties_by_class_index():
    assert select_labels(_probs({10: 0.7, 1: 0.7, 8: 0.7, 3: 0.7})) == (LABELS[1], LABELS[3], LABELS[8])
    assert select_labels(np.full(len(LABELS), 0.2)) == (LABELS[0], SILENCE, SILENCE)


def test_selection_batch_and_parameters():
    batch = np.stack([_probs({5: 0.9, 2: 0.6}), _probs({7: 0.4})])
    assert select_labels_batch(batch) == [(LABELS[2], LABELS[5], SILENCE), (LABELS[7], SILENCE, SILENCE)]
    assert select_labels(_probs({5: 0.9, 2: 0.6}), threshold=0.8, max_labels=1, n_slots=2) == (LABELS[5], SILENCE)


# ---------------------------------------------------------------------------------------------------------------
# Log-mel front end


def test_log_mel_shape_and_silence_level():
    front = LogMel()  # the baseline's 32-kHz front end
    out = front(torch.zeros(2, 32_000))
    assert out.shape == (2, 1, 80, 1 + 32_000 // 320)
    # log(float32 eps) normalised by the default statistics (-7.1, 4.2), by hand: (-15.942385 + 7.1) / 4.2.
    assert torch.allclose(out, torch.full_like(out, (-15.942385 + 7.1) / 4.2), atol=1e-5)


def test_mel_filterbank_matches_librosa_slaney():
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=32_000, n_fft=800, n_mels=80, fmin=50.0, fmax=16_000.0)
    assert np.allclose(LogMel().filterbank.numpy(), expected, rtol=1e-4, atol=1e-7)


def test_log_mel_matches_numpy_stft_reference():
    librosa = pytest.importorskip("librosa")
    sr, n_fft, hop = 8_000, 200, 80
    wave = np.random.default_rng(0).standard_normal(4_000).astype(np.float32)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    padded = np.pad(wave.astype(np.float64), n_fft // 2, mode="reflect")
    frames = np.stack([padded[i * hop : i * hop + n_fft] for i in range(1 + len(wave) // hop)], axis=1)
    power = np.abs(np.fft.rfft(frames * window[:, None], axis=0)) ** 2
    mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=32, fmin=50.0, fmax=sr / 2).astype(np.float64) @ power
    expected = (np.log(mel + np.finfo(np.float32).eps) + 7.1) / 4.2
    front = LogMel(sample_rate=sr, n_fft=n_fft, hop_length=hop, n_mels=32, fmax=None)
    got = front(torch.from_numpy(wave)[None])[0, 0].double().numpy()
    assert got.shape == expected.shape
    assert np.allclose(got, expected, atol=2e-3)


def test_tone_lands_in_its_mel_band():
    librosa = pytest.importorskip("librosa")
    sr, tone_hz = 32_000, 1_000.0
    t = np.arange(sr) / sr
    wave = torch.from_numpy(np.sin(2 * np.pi * tone_hz * t).astype(np.float32))[None]
    centres = librosa.mel_frequencies(n_mels=82, fmin=50.0, fmax=16_000.0)[1:-1]
    band = int(np.argmin(np.abs(centres - tone_hz)))
    energy = LogMel()(wave)[0, 0].mean(dim=-1)
    assert int(energy.argmax()) == band
    # Six bands away the level is far lower: 1.0 normalised unit = 4.2 nats of power, about 18 dB.
    assert float(energy[band] - energy[band + 6]) > 1.0


# ---------------------------------------------------------------------------------------------------------------
# M2D encoder: tiny configuration, plain functional reference of the documented runtime

TINY = {"embed_dim": 32, "depth": 3, "num_heads": 2, "unit_frames": 64, "patch_size": 16}
TINY_FRONT = {"sample_rate": 8_000, "n_fft": 200, "hop_length": 80, "n_mels": 32, "fmax": None}
N_FREQ, N_TIME = 32 // 16, 64 // 16


def _m2d_checkpoint(seed: int = 0, time_patches: int = N_TIME) -> dict[str, torch.Tensor]:
    """Random encoder weights under the M2D encoder-only names (timm ViT), for the tiny configuration."""
    gen = torch.Generator().manual_seed(seed)
    d, hidden = TINY["embed_dim"], 4 * TINY["embed_dim"]

    def rnd(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    state = {
        "cls_token": rnd(1, 1, d),
        "pos_embed": rnd(1, 1 + N_FREQ * time_patches, d),
        "patch_embed.proj.weight": rnd(d, 1, 16, 16, scale=0.05),
        "patch_embed.proj.bias": rnd(d),
        "norm.weight": 1 + rnd(d),
        "norm.bias": rnd(d),
    }
    for i in range(TINY["depth"]):
        shapes = {
            "norm1.weight": (d,),
            "norm1.bias": (d,),
            "attn.qkv.weight": (3 * d, d),
            "attn.qkv.bias": (3 * d,),
            "attn.proj.weight": (d, d),
            "attn.proj.bias": (d,),
            "norm2.weight": (d,),
            "norm2.bias": (d,),
            "mlp.fc1.weight": (hidden, d),
            "mlp.fc1.bias": (hidden,),
            "mlp.fc2.weight": (d, hidden),
            "mlp.fc2.bias": (d,),
        }
        for name, shape in shapes.items():
            state[f"blocks.{i}.{name}"] = (1 + rnd(*shape)) if name.endswith("norm1.weight") else rnd(*shape)
    return state


def _reference_unit(state: dict[str, torch.Tensor], lms: torch.Tensor) -> torch.Tensor:
    """M2D runtime on one unit, restated with functional ops: [B, 1, F_bins, t*16] -> [B, t, F*D]."""
    d, heads = TINY["embed_dim"], TINY["num_heads"]
    tokens = F.conv2d(lms, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=16)
    batch, _, n_freq, t = tokens.shape
    tokens = tokens.flatten(2).transpose(1, 2)  # frequency-major patches
    pos = state["pos_embed"][0, 1:].reshape(n_freq, -1, d)[:, :t].reshape(-1, d)
    cls = (state["cls_token"] + state["pos_embed"][:, :1]).expand(batch, -1, -1)
    x = torch.cat([cls, tokens + pos], dim=1)
    for i in range(TINY["depth"]):
        p = {k[len(f"blocks.{i}.") :]: v for k, v in state.items() if k.startswith(f"blocks.{i}.")}
        h = F.layer_norm(x, (d,), p["norm1.weight"], p["norm1.bias"], eps=1e-6)
        qkv = h @ p["attn.qkv.weight"].T + p["attn.qkv.bias"]
        outs = []
        for head in range(heads):
            cols = slice(head * d // heads, (head + 1) * d // heads)
            q, k, v = (qkv[..., part * d : (part + 1) * d][..., cols] for part in range(3))
            weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d // heads), dim=-1)
            outs.append(weights @ v)
        x = x + torch.cat(outs, dim=-1) @ p["attn.proj.weight"].T + p["attn.proj.bias"]
        h = F.layer_norm(x, (d,), p["norm2.weight"], p["norm2.bias"], eps=1e-6)
        x = x + F.gelu(h @ p["mlp.fc1.weight"].T + p["mlp.fc1.bias"]) @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]
    x = F.layer_norm(x, (d,), state["norm.weight"], state["norm.bias"], eps=1e-6)[:, 1:]
    per_freq = x.reshape(batch, n_freq, t, d)
    return torch.cat([per_freq[:, f] for f in range(n_freq)], dim=-1)


def _tiny_m2d(tmp_path, state=None, wrap=lambda s: s):
    tagger = build_tagger("m2d", front_end=TINY_FRONT, **TINY)
    path = tmp_path / "weights_ep1.pth"
    torch.save(wrap(state if state is not None else _m2d_checkpoint()), path)
    return tagger, path


def test_m2d_forward_shapes_on_waveforms():
    tagger = build_tagger("m2d", front_end=TINY_FRONT, **TINY).eval()
    wave = torch.randn(2, 4, 8_000)  # 1 s -> 101 frames -> units of 64 and 37 (padded to 48) -> 4 + 3 time steps
    assert tagger.features(wave).shape == (2, 7, N_FREQ * 32)
    assert tagger(wave).shape == (2, 18)
    # Only channel 0 matters.
    other = wave.clone()
    other[:, 1:] = torch.randn(2, 3, 8_000)
    assert torch.allclose(tagger(wave), tagger(other))


def test_m2d_weights_round_trip_matches_functional_reference(tmp_path):
    state = _m2d_checkpoint()
    state["norm_stats"] = torch.tensor([-5.0, 3.0])
    state["decoder_blocks.0.norm1.weight"] = torch.ones(8)  # pre-training leftovers are ignored
    state["offline_predictor.weight"] = torch.ones(4, 4)
    prefixed = {"model": {f"module.ar.runtime.backbone.{k}": v for k, v in state.items()}}
    tagger, path = _tiny_m2d(tmp_path, state, wrap=lambda s: prefixed)
    summary = load_m2d_weights(tagger, path)
    assert summary["norm_stats"] == (-5.0, 3.0)
    assert summary["ignored"] == ["decoder_blocks.0.norm1.weight", "offline_predictor.weight"]
    assert torch.equal(tagger.backbone.blocks[2].attn.qkv.weight, state["blocks.2.attn.qkv.weight"])
    tagger.eval()
    lms = torch.randn(2, 1, 32, 64)  # exactly one unit
    with torch.no_grad():
        assert torch.allclose(tagger.backbone(lms), _reference_unit(state, lms), atol=1e-5)
        # Short input: the position table is cropped to the first 2 time columns.
        assert torch.allclose(tagger.backbone(lms[..., :32]), _reference_unit(state, lms[..., :32]), atol=1e-5)
        # Long input: units of 64 frames; the 20-frame tail is zero-padded to 2 whole patches.
        long = torch.randn(1, 1, 32, 64 + 20)
        expected = torch.cat(
            [_reference_unit(state, long[..., :64]), _reference_unit(state, F.pad(long[..., 64:], (0, 12)))], 1
        )
        assert torch.allclose(tagger.backbone(long), expected, atol=1e-5)
        # The front end uses the checkpoint's statistics.
        wave = torch.randn(1, 8_000)
        raw = tagger.front_end.log_mel(wave).unsqueeze(1)
        assert torch.allclose(tagger.front_end(wave), (raw + 5.0) / 3.0)


def test_m2d_longer_position_table_is_cropped(tmp_path):
    state = _m2d_checkpoint(time_patches=2 * N_TIME)
    tagger, path = _tiny_m2d(tmp_path, state)
    load_m2d_weights(tagger, path)
    expected = state["pos_embed"][0, 1:].reshape(N_FREQ, 2 * N_TIME, -1)[:, :N_TIME]
    assert torch.equal(tagger.backbone.pos_embed[0, 1:].reshape(N_FREQ, N_TIME, -1), expected)
    assert torch.equal(tagger.backbone.pos_embed[0, 0], state["pos_embed"][0, 0])
    assert tagger.front_end.norm_std.item() == pytest.approx(4.2)  # no norm_stats: the default stays


def test_m2d_evar_head_statistics_initialise_head_norm(tmp_path):
    state = _m2d_checkpoint()
    raw = {f"module.ar.runtime.backbone.{k}": v for k, v in state.items()}
    mean, var = torch.linspace(-1, 1, N_FREQ * 32), torch.linspace(0.5, 2, N_FREQ * 32)
    raw |= {"module.head.norm.running_mean": mean, "module.head.norm.running_var": var}
    raw["module.head.mlp.mlp.0.weight"] = torch.zeros(527, N_FREQ * 32)  # the AudioSet head is not used
    tagger, path = _tiny_m2d(tmp_path, raw)
    summary = load_m2d_weights(tagger, path)
    assert summary["head_norm"] is True and summary["ignored"] == ["module.head.mlp.mlp.0.weight"]
    assert torch.equal(tagger.head_norm.running_mean, mean) and torch.equal(tagger.head_norm.running_var, var)
    assert tagger.head.weight.shape == (18, N_FREQ * 32)


def test_m2d_loading_errors_name_the_file(tmp_path):
    tagger, _ = _tiny_m2d(tmp_path)
    with pytest.raises(InputError, match="not found") as err:
        load_m2d_weights(tagger, tmp_path / "absent.pth")
    assert err.value.path.endswith("absent.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read") as err:
        load_m2d_weights(tagger, garbage)
    assert err.value.path == str(garbage)
    state = _m2d_checkpoint()
    state["blocks.1.attn.qkv.weight"] = torch.zeros(5, 5)
    _, bad_shape = _tiny_m2d(tmp_path, state)
    with pytest.raises(InputError, match="does not fit") as err:
        load_m2d_weights(tagger, bad_shape)
    assert err.value.field == "blocks.1.attn.qkv.weight"
    state = _m2d_checkpoint()
    del state["norm.weight"], state["norm.bias"]
    _, missing = _tiny_m2d(tmp_path, state)
    with pytest.raises(InputError, match="2 keys missing") as err:
        load_m2d_weights(tagger, missing)
    assert err.value.field == "norm.weight"


# ---------------------------------------------------------------------------------------------------------------
# Parameter counts (meta device) and fine-tuning stages


def _vit_base_counts() -> tuple[int, int]:
    """ViT-Base by hand: (encoder parameters, last-2-blocks + final LayerNorm)."""
    d, hidden = 768, 3072
    block = (3 * d * d + 3 * d) + (d * d + d) + (d * hidden + hidden) + (hidden * d + d) + 4 * d
    encoder = 12 * block + (16 * 16 * d + d) + d + (1 + 5 * 62) * d + 2 * d  # blocks, patch, cls, pos, norm
    return encoder, 2 * block + 2 * d


def test_m2d_default_parameter_counts():
    counts = parameter_counts("m2d")
    encoder, step2_extra = _vit_base_counts()
    assert counts["backbone"] == encoder
    assert counts["backbone"] == pytest.approx(85.5e6, rel=5e-3)
    assert counts["head"] == 3840 * 18 + 18 == 69_138
    assert counts["trainable_head"] == 69_138
    assert counts["trainable_2_blocks"] - counts["trainable_head"] == step2_extra
    assert step2_extra == pytest.approx(14.2e6, rel=5e-3)
    assert counts["trainable_all"] == encoder + 69_138


def _trainable_names(tagger, stage: str) -> set[str]:
    params = trainable_parameters(tagger, stage)
    names = {name for name, p in tagger.named_parameters() if p.requires_grad}
    assert len(params) == len(names)
    return names


def test_m2d_stage_parameter_sets():
    tagger = build_tagger("m2d", front_end=TINY_FRONT, **TINY)
    all_names = {name for name, _ in tagger.named_parameters()}
    assert _trainable_names(tagger, "head") == {"head.weight", "head.bias"}
    step2 = {n for n in all_names if n.startswith(("backbone.blocks.1.", "backbone.blocks.2.", "backbone.norm."))}
    assert _trainable_names(tagger, "2_blocks") == step2 | {"head.weight", "head.bias"}
    assert "backbone.pos_embed" not in step2 and len(step2) == 2 * 12 + 2
    assert _trainable_names(tagger, "all") == all_names
    with pytest.raises(ConfigError) as err:
        trainable_parameters(tagger, "3_layers")
    assert err.value.key == "tagger.stage"


STANDIN_FRONT = TINY_FRONT


def test_standin_stages_freeze_weights_and_statistics():
    torch.manual_seed(0)
    tagger = build_tagger("standin", front_end=STANDIN_FRONT, channels=(8, 8, 16))
    blocks = {f"backbone.blocks.{i}.{p}" for i in (1, 2) for p in ("conv.weight", "bn.weight", "bn.bias")}
    assert _trainable_names(tagger, "2_blocks") == blocks | {"head.weight", "head.bias"}
    params = trainable_parameters(tagger, "head")
    assert {id(p) for p in params} == {id(tagger.head.weight), id(tagger.head.bias)}
    set_train_mode(tagger, "head")
    frozen = {k: v.clone() for k, v in tagger.backbone.state_dict().items()}
    head_mean = tagger.head_norm.running_mean.clone()
    optimiser = torch.optim.AdamW(params, lr=1e-2)
    wave, target = torch.randn(4, 4_000), torch.from_numpy(np.stack([multihot([LABELS[i]]) for i in range(4)]))
    loss = F.binary_cross_entropy_with_logits(tagger(wave), target)
    loss.backward()
    optimiser.step()
    assert all(torch.equal(v, tagger.backbone.state_dict()[k]) for k, v in frozen.items())  # weights and BN stats
    assert not torch.equal(tagger.head_norm.running_mean, head_mean)  # the head's BN statistics do update


def test_standin_time_pooling_and_max_pooling():
    """time_pool shortens the time axis per block (ceil); max pooling keeps the loudest step of a short event."""
    front = LogMel(**STANDIN_FRONT)
    frames = front(torch.zeros(1, 8_000)).shape[-1]
    mean_net = build_tagger("standin", front_end=STANDIN_FRONT, channels=(8, 8, 16), time_pool=2, pooling="mean")
    wave = torch.randn(2, 8_000)
    assert mean_net.features(wave).shape[1] == math.ceil(math.ceil(math.ceil(frames / 2) / 2) / 2)
    torch.manual_seed(0)
    max_net = build_tagger("standin", front_end=STANDIN_FRONT, channels=(8, 8, 16), time_pool=1, pooling="max").eval()
    assert max_net.features(wave).shape[1] == 1
    # The max over time of per-step features is the per-step maximum of the mean-pooling network's steps.
    per_step = build_tagger("standin", front_end=STANDIN_FRONT, channels=(8, 8, 16), time_pool=1, pooling="mean")
    per_step.eval()
    per_step.load_state_dict(max_net.state_dict())
    with torch.no_grad():
        assert torch.allclose(max_net.features(wave)[:, 0], per_step.features(wave).amax(dim=1))
    with pytest.raises(ConfigError) as err:
        build_tagger("standin", front_end=STANDIN_FRONT, pooling="median")
    assert err.value.key == "tagger.model_args"


def test_build_tagger_errors():
    with pytest.raises(ConfigError) as err:
        build_tagger("resnet")
    assert err.value.key == "tagger.model" and err.value.source == "s5"
    with pytest.raises(ConfigError) as err:
        build_tagger("standin", front_end=STANDIN_FRONT, channels=(8, 8, 8, 8, 8, 8))  # 32 mels / 2**6
    assert err.value.key == "tagger.model_args"
    with pytest.raises(ConfigError) as err:
        build_tagger("m2d", depth_of_field=3)
    assert err.value.key == "tagger.model_args"


# ---------------------------------------------------------------------------------------------------------------
# Stand-in tagger overfits tone-class clips

TONE_HZ = (300.0, 550.0, 900.0, 1_400.0, 2_100.0, 3_000.0)  # class i of LABELS sounds at TONE_HZ[i]


def _tone_clips(n_clips: int, sr: int, seconds: float, seed: int) -> tuple[torch.Tensor, list[tuple[str, ...]]]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    waves, sets = [], []
    for _ in range(n_clips):
        classes = sorted(rng.choice(len(TONE_HZ), size=rng.integers(1, 4), replace=False).tolist())
        wave = 0.01 * rng.standard_normal(len(t))
        for c in classes:
            wave += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * TONE_HZ[c] * t + rng.uniform(0, 2 * np.pi))
        waves.append(wave)
        sets.append(tuple(LABELS[c] for c in classes))
    return torch.tensor(np.stack(waves), dtype=torch.float32), sets


def test_standin_tagger_overfits_tone_clips():
    torch.manual_seed(0)
    waves, sets = _tone_clips(20, sr=8_000, seconds=0.5, seed=1)
    target = torch.from_numpy(np.stack([multihot(s) for s in sets]))
    tagger = build_tagger("standin", front_end=STANDIN_FRONT, channels=(8, 8, 16))
    optimiser = torch.optim.AdamW(trainable_parameters(tagger, "all"), lr=1e-2, amsgrad=True)
    accuracy = 0.0
    for step in range(300):
        set_train_mode(tagger, "all")
        optimiser.zero_grad()
        F.binary_cross_entropy_with_logits(tagger(waves), target).backward()
        optimiser.step()
        if step % 10 == 9:
            tagger.eval()
            with torch.no_grad():
                chosen = select_labels_batch(torch.sigmoid(tagger(waves)).numpy())
            accuracy = np.mean([tuple(x for x in c if x != SILENCE) == s for c, s in zip(chosen, sets, strict=True)])
            if accuracy == 1.0:
                break
    assert accuracy == 1.0
