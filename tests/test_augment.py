"""PSELDNets' augmix: FOA rotations of features and labels, masks, shifts, mixes, composition, seeding, mono mode."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from seldflow.augment import (
    AugmentSettings,
    Batch,
    Context,
    CropSettings,
    FoaFeatures,
    FreqShiftSettings,
    RotateSettings,
    SpecAugSettings,
    TrackMixSettings,
    WavMixSettings,
    augment_batch,
    build_augmenter,
    check_augment,
    crop,
    freqshift,
    mono_to_foa,
    rotate,
    rotation_patterns,
    spatialize_mono,
    specaug,
    trackmix,
    wavmix,
)
from seldflow.errors import ConfigError
from seldflow.feature_kinds import foa_logmel_iv
from seldflow.formats.events import event_table
from seldflow.tasks.seld_methods import get_method

SR = 24000
N_CLASSES = 4
N_LABELS = 5


def unit(azimuth: float, elevation: float) -> np.ndarray:
    """(x, y, z) of a direction in degrees: x front, y left, z up."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])


def angles(vector: np.ndarray) -> tuple[float, float]:
    x, y, z = vector / np.linalg.norm(vector)
    return math.degrees(math.atan2(y, x)), math.degrees(math.asin(z))


def plane_wave(signal: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """FOA in the project's order, ACN W, Y, Z, X (SN3D): W = s, Y = s·uy, Z = s·uz, X = s·ux."""
    ux, uy, uz = direction
    return np.stack([signal, uy * signal, uz * signal, ux * signal]).astype(np.float32)


def noise(seconds: float = 0.3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(SR * seconds)).astype(np.float32)


def features_of(foa: np.ndarray) -> np.ndarray:
    return foa_logmel_iv(foa, n_mels=32)


def intensity_direction(features: np.ndarray) -> np.ndarray:
    """Mean of the intensity channels, which hold (y, z, x) components (ACN Y, Z, X), returned as unit (x, y, z)."""
    y, z, x = features[4:7].mean(axis=(1, 2))
    vector = np.array([x, y, z])
    return vector / np.linalg.norm(vector)


def events(*rows: tuple[float, float, float, float]) -> np.ndarray:
    """Event table from (frame, class, azimuth, elevation) rows."""
    array = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return event_table(
        array[:, 0], array[:, 1], np.zeros(len(array)), array[:, 2], array[:, 3], np.full(len(array), np.nan)
    )


def targets(method_name: str, *tables: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    method = get_method(method_name)
    return np.stack([method.targets(table, N_LABELS, n_classes) for table in tables]).astype(np.float32)


def foa_context(method: str = "maccdoa", frames_per_label: int = 5) -> Context:
    return Context(method=get_method(method), frames_per_label=frames_per_label, spatial=FoaFeatures())


# ---------------------------------------------------------------------------------------------------------------
# Rotation
# ---------------------------------------------------------------------------------------------------------------


def test_rotation_patterns_are_the_mazzon_sets_distinct_and_invertible() -> None:
    for count in (16, 48):
        patterns = rotation_patterns(count)
        assert patterns.shape == (count, 3, 3)
        assert len({p.tobytes() for p in patterns}) == count
        flat = {p.tobytes() for p in patterns}
        for matrix in patterns:
            np.testing.assert_array_equal(matrix @ matrix.T, np.eye(3))  # orthogonal
            assert matrix.T.tobytes() in flat  # the inverse is in the set too
    # Mazzon et al.'s 16 FOA patterns: azimuth to az, -az, 180 - az, az - 180, 90 - az, az - 90, az + 90,
    # -90 - az, each with elevation kept or negated.
    az, el = 20.0, 30.0
    expected = {(a, e) for a in (20, -20, 160, -160, 70, -70, 110, -110) for e in (30, -30)}
    found = {tuple(round(v) for v in angles(m @ unit(az, el))) for m in rotation_patterns(16)}
    assert found == expected


def test_rotating_features_equals_the_features_of_the_rotated_plane_wave() -> None:
    """All 48 transforms: the transformed logmelIV of a plane wave from u is the logmelIV of the wave from R u."""
    signal, u = noise(), unit(40, 25)
    original = features_of(plane_wave(signal, u))
    np.testing.assert_allclose(intensity_direction(original), u, atol=1e-3)
    layout = FoaFeatures()
    for matrix in rotation_patterns(48):
        moved = layout.transform(original, matrix)
        expected = features_of(plane_wave(signal, matrix @ u))
        np.testing.assert_allclose(moved[:4], expected[:4], atol=1e-3)  # dB
        np.testing.assert_allclose(moved[4:], expected[4:], atol=1e-4)
        np.testing.assert_allclose(intensity_direction(moved), matrix @ u, atol=1e-3)


@pytest.mark.parametrize("name", ["maccdoa", "accdoa", "einv2", "maccdoa_dist"])
def test_rotating_targets_equals_the_targets_of_the_rotated_events(name: str) -> None:
    method = get_method(name)
    table = events((0, 1, 40, 25), (2, 3, -120, -10), (2, 1, 170, 60))
    for matrix in rotation_patterns(48):
        turned = table.copy()
        for row in turned:
            row[3], row[4] = angles(matrix @ unit(row[3], row[4]))
        moved = method.transform_directions(targets(name, table), matrix)
        np.testing.assert_allclose(moved, targets(name, turned), atol=1e-6)


def test_the_rotate_augmentation_moves_intensity_and_label_by_the_same_transform() -> None:
    """p = 1: every clip is transformed by some pattern; its label and its intensity direction still agree."""
    directions = [(40, 25), (-100, -30), (150, 5), (0, 70)]
    feats = np.stack([features_of(plane_wave(noise(seed=k), unit(*d))) for k, d in enumerate(directions)])
    n_frames = feats.shape[2]
    table = [events(*[(f, 2, *d) for f in range(N_LABELS)]) for d in directions]
    batch = Batch(feats, targets("maccdoa", *table), np.ones(len(directions), dtype=np.int64))
    out = rotate(
        batch,
        RotateSettings(p=1.0, patterns=48),
        foa_context(frames_per_label=n_frames // N_LABELS),
        np.random.default_rng(5),
    )
    moved = 0
    for clip, direction in enumerate(directions):
        label = out.targets[clip, 0, 0, 1:, 2]  # group A track of class 2 in frame 0: the unit direction
        np.testing.assert_allclose(np.linalg.norm(label), 1.0, atol=1e-6)
        np.testing.assert_allclose(intensity_direction(out.features[clip]), label, atol=1e-3)
        for frame in range(N_LABELS):  # one transform per clip, every frame alike
            np.testing.assert_allclose(out.targets[clip, frame, 0, 1:, 2], label, atol=1e-6)
        moved += not np.allclose(label, unit(*direction), atol=1e-6)
    assert moved > 0


def test_rotation_with_probability_zero_changes_nothing() -> None:
    feats = np.random.default_rng(0).standard_normal((3, 7, 10, 8)).astype(np.float32)
    batch = Batch(feats, targets("maccdoa", events((0, 1, 30, 0)), events(), events()), np.ones(3, dtype=np.int64))
    out = rotate(batch, RotateSettings(p=0.0), foa_context(frames_per_label=2), np.random.default_rng(0))
    np.testing.assert_array_equal(out.features, batch.features)
    np.testing.assert_array_equal(out.targets, batch.targets)


# ---------------------------------------------------------------------------------------------------------------
# Masks, crop, shift
# ---------------------------------------------------------------------------------------------------------------


def random_batch(n_clips: int = 4, frames: int = 25, bins: int = 16, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n_clips, 7, frames, bins)).astype(np.float32) + 5.0  # no natural zeros
    tables = [
        events(*[(f, int(rng.integers(N_CLASSES)), 30.0 * k, 0) for f in range(N_LABELS)]) for k in range(n_clips)
    ]
    labels = targets("maccdoa", *tables)
    return Batch(feats, labels, get_method("maccdoa").polyphony(labels))


def test_frequency_masks_crop_and_freqshift_leave_labels_alone() -> None:
    batch = random_batch()
    context = foa_context()
    rng = np.random.default_rng(1)
    for out in (
        specaug(batch, SpecAugSettings(time_masks=0, freq_masks=2, freq_width=8), context, rng),
        crop(batch, CropSettings(), context, rng),
        freqshift(batch, FreqShiftSettings(p=1.0, max_shift=5), context, rng),
    ):
        np.testing.assert_array_equal(out.targets, batch.targets)
        assert out.features.shape == batch.features.shape
        assert not np.array_equal(out.features, batch.features)


def test_time_masks_silence_exactly_the_label_frames_they_cover() -> None:
    """Masks are drawn in whole label frames: masked feature frames are those of masked label frames, and (as
    PSELDNets does) those label frames lose their events; with mask_labels off the labels stay."""
    ratio = 5
    batch = random_batch(n_clips=6, frames=N_LABELS * ratio)
    settings = SpecAugSettings(time_width=3 * ratio, time_masks=2, freq_masks=0)
    out = specaug(batch, settings, foa_context(frames_per_label=ratio), np.random.default_rng(3))
    frame_masked = np.all(out.features == 0.0, axis=(1, 3))  # (B, frames): every channel and bin
    label_masked = frame_masked.reshape(len(batch), N_LABELS, ratio).all(axis=2)
    np.testing.assert_array_equal(frame_masked, np.repeat(label_masked, ratio, axis=1))  # whole label frames
    assert label_masked.any()
    for clip in range(len(batch)):
        for frame in range(N_LABELS):
            if label_masked[clip, frame]:
                assert not out.targets[clip, frame].any()
            else:
                np.testing.assert_array_equal(out.targets[clip, frame], batch.targets[clip, frame])
    kept = specaug(batch, replace(settings, mask_labels=False), foa_context(), np.random.default_rng(3))
    np.testing.assert_array_equal(kept.targets, batch.targets)


def test_crop_cuts_bounded_patches_per_channel_and_keeps_frames() -> None:
    batch = random_batch()
    settings = CropSettings(time_width=4, freq_width=3, patches=2, mask_value=0.0)
    out = crop(batch, settings, foa_context(), np.random.default_rng(2))
    masked = out.features == 0.0
    assert masked.any()
    # At most `patches` rectangles of (time_width - 1) x (freq_width - 1) cells per clip and channel.
    assert masked.sum(axis=(2, 3)).max() <= settings.patches * (settings.time_width - 1) * (settings.freq_width - 1)
    np.testing.assert_array_equal(out.features[~masked], batch.features[~masked])
    np.testing.assert_array_equal(out.targets, batch.targets)


def test_freqshift_moves_a_bin_by_less_than_max_shift_with_reflected_edges() -> None:
    feats = np.zeros((20, 7, 3, 16), dtype=np.float32)
    feats[..., 8] = 1.0
    batch = Batch(feats, np.zeros((20, N_LABELS, 6, 4, N_CLASSES), np.float32), np.ones(20, dtype=np.int64))
    out = freqshift(batch, FreqShiftSettings(p=1.0, max_shift=4), foa_context(), np.random.default_rng(0))
    shifts = set()
    for clip in range(20):
        peak = np.flatnonzero(out.features[clip, 0, 0])
        assert len(peak) == 1 and np.all(out.features[clip, :, :, peak[0]] == 1.0)
        shifts.add(int(peak[0]) - 8)
    assert shifts <= set(range(-3, 4)) and len(shifts) > 2
    # Reflection: a ramp 0..15 shifted up by s reads s, s-1, ..., 1, 0, 1, ...; shifted down, s, s+1, ..., 15, 14, ...
    ramp = np.broadcast_to(np.arange(16, dtype=np.float32), (1, 7, 3, 16)).copy()
    one = Batch(ramp, np.zeros((1, N_LABELS, 6, 4, N_CLASSES), np.float32), np.ones(1, dtype=np.int64))
    index = np.arange(16)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        row = freqshift(one, FreqShiftSettings(p=1.0, max_shift=4), foa_context(), rng).features[0, 0, 0]
        s = int(row[0])
        up, down = np.abs(index - s), np.minimum(index + s, 30 - (index + s))
        assert np.array_equal(row, up) or np.array_equal(row, down)


# ---------------------------------------------------------------------------------------------------------------
# Mixing labels
# ---------------------------------------------------------------------------------------------------------------


def test_multiaccdoa_mix_keeps_both_clips_events_in_adpit_groups() -> None:
    """By hand: base has class 1 in frames 0-3; partner class 1 in frames 2-4 and class 3 in frames 0-1."""
    base = targets("maccdoa", events(*[(f, 1, 30, 10) for f in range(4)]))
    partner = targets("maccdoa", events(*[(f, 1, -90, 0) for f in range(2, 5)], (0, 3, 180, 45), (1, 3, 180, 45)))
    mixed = get_method("maccdoa").mix_targets(base, partner, np.array([0.3]))[0]
    b, p, q = unit(30, 10), unit(-90, 0), unit(180, 45)
    for frame in range(N_LABELS):
        for cls in range(N_CLASSES):
            expected = np.zeros((6, 4))
            if cls == 1 and frame in (0, 1):
                expected[0] = [0.3, *b]  # base alone: group A
            elif cls == 1 and frame in (2, 3):
                expected[1], expected[2] = [0.3, *b], [0.7, *p]  # both: group B, base first
            elif cls == 1 and frame == 4:
                expected[0] = [0.7, *p]
            elif cls == 3 and frame in (0, 1):
                expected[0] = [0.7, *q]
            np.testing.assert_allclose(mixed[frame, :, :, cls], expected, atol=1e-6, err_msg=f"{frame=} {cls=}")


def test_multiaccdoa_mix_with_a_two_source_partner_fills_group_c() -> None:
    base = targets("maccdoa", events((0, 2, 10, 0)))
    partner = targets("maccdoa", events((0, 2, 100, 0), (0, 2, -100, 0)))
    method = get_method("maccdoa")
    assert method.polyphony(partner).tolist() == [2]
    mixed = method.mix_targets(base, partner, np.array([0.6]))[0, 0, :, :, 2]
    expected = np.zeros((6, 4))
    expected[3], expected[4], expected[5] = [0.6, *unit(10, 0)], [0.4, *unit(100, 0)], [0.4, *unit(-100, 0)]
    np.testing.assert_allclose(mixed, expected, atol=1e-6)


def test_accdoa_and_einv2_mixes_keep_both_clips_events() -> None:
    base_events, partner_events = events((0, 1, 30, 10)), events((0, 2, -60, 0), (1, 1, 90, 0))
    weight = np.array([0.25])
    accdoa = get_method("accdoa").mix_targets(targets("accdoa", base_events), targets("accdoa", partner_events), weight)
    np.testing.assert_allclose(accdoa[0, 0, :, 1], 0.25 * unit(30, 10), atol=1e-6)
    np.testing.assert_allclose(accdoa[0, 0, :, 2], 0.75 * unit(-60, 0), atol=1e-6)
    np.testing.assert_allclose(accdoa[0, 1, :, 1], 0.75 * unit(90, 0), atol=1e-6)
    einv2 = get_method("einv2").mix_targets(targets("einv2", base_events), targets("einv2", partner_events), weight)[0]
    # Frame 0: base event on track 0, partner's on track 1; frame 1: the partner's alone on track 0.
    np.testing.assert_allclose(einv2[0, 0], [0, 0.25, 0, 0, *unit(30, 10)], atol=1e-6)
    np.testing.assert_allclose(einv2[0, 1], [0, 0, 0.75, 0, *unit(-60, 0)], atol=1e-6)
    np.testing.assert_allclose(einv2[1, 0], [0, 0.75, 0, 0, *unit(90, 0)], atol=1e-6)
    assert not einv2[0, 2].any() and not einv2[1, 1:].any()


def test_trackmix_mixes_single_source_clips_features_and_labels_alike() -> None:
    """Clip k holds class k at its own direction (one source), with features all equal to 10·k; clip 3 has two
    sources and stays as it is. Each mixed clip's weight shows in its labels and in its features."""
    tables = [events(*[(f, k, 40 * k, 0) for f in range(N_LABELS)]) for k in range(3)]
    tables.append(events(*[(f, c, 0, 0) for f in range(N_LABELS) for c in (0, 1)], (0, 0, 90, 0)))
    labels = targets("maccdoa", *tables)
    feats = np.stack([np.full((7, 10, 8), 10.0 * k, dtype=np.float32) for k in range(4)])
    batch = Batch(feats, labels, get_method("maccdoa").polyphony(labels))
    assert batch.polyphony.tolist() == [1, 1, 1, 3]
    out = trackmix(batch, TrackMixSettings(alpha=0.5), foa_context(), np.random.default_rng(4))
    np.testing.assert_array_equal(out.features[3], batch.features[3])
    np.testing.assert_array_equal(out.targets[3], batch.targets[3])
    assert out.polyphony.tolist() == [2, 2, 2, 3]
    for clip in range(3):
        own = out.targets[clip, 0, :, 0, clip]  # activities of the clip's own class
        weight = own.sum() if own[0] > 0 else own[1]
        partner = next(
            (k for k in range(3) if k != clip and out.targets[clip, 0, :, 0, k].any()), clip
        )  # a clip may draw itself
        np.testing.assert_allclose(out.features[clip], weight * 10.0 * clip + (1 - weight) * 10.0 * partner, rtol=1e-5)
        np.testing.assert_allclose(out.targets[clip, :, :, 0].sum(axis=(1, 2)), 1.0, atol=1e-6)  # weights add to 1


def test_wavmix_mixes_single_source_clips_with_one_or_two_source_partners() -> None:
    """Four one-source clips (class k at 60·k degrees) and two two-source clips; each class belongs to one clip. A
    mixed clip keeps its event at weight w and gains its partner's at 1 - w; its features are the FOA mix."""
    n_classes = 8
    tables = [events(*[(f, k, 60 * k, 0) for f in range(N_LABELS)]) for k in range(4)]
    tables += [events(*[(f, c, 45 * c, 10) for f in range(N_LABELS) for c in (k, k + 1)]) for k in (4, 6)]
    labels = targets("maccdoa", *tables, n_classes=n_classes)
    feats = np.stack([features_of(plane_wave(noise(seed=k), unit(30 * k, 0))) for k in range(6)])
    batch = Batch(feats, labels, get_method("maccdoa").polyphony(labels))
    assert batch.polyphony.tolist() == [1, 1, 1, 1, 2, 2]
    owner = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 4, 6: 5, 7: 5}  # class -> clip
    partners_seen = set()
    for seed in range(12):
        out = wavmix(batch, WavMixSettings(alpha=0.5, p=1.0), foa_context(), np.random.default_rng(seed))
        np.testing.assert_array_equal(out.features[4:], batch.features[4:])  # two-source clips are never mixed
        np.testing.assert_array_equal(out.targets[4:], batch.targets[4:])
        for clip in range(4):
            if np.array_equal(out.targets[clip], batch.targets[clip]):
                continue
            classes = [c for c in range(n_classes) if out.targets[clip, 0, :, 0, c].any()]
            others = {owner[c] for c in classes} - {clip}
            partner = others.pop() if others else clip
            assert not others
            weight = out.targets[clip, 0, :, 0, clip].max() if partner != clip else out.targets[clip, 0, 1, 0, clip]
            for c in classes:
                if owner[c] != clip:
                    np.testing.assert_allclose(out.targets[clip, :, :, 0, c].max(axis=1), 1 - weight, atol=1e-6)
            assert out.polyphony[clip] == batch.polyphony[partner] + 1
            expected = FoaFeatures().mix(batch.features[[clip]], batch.features[[partner]], np.array([weight]))[0]
            np.testing.assert_allclose(out.features[clip], expected, rtol=1e-5, atol=1e-3)
            partners_seen.add(int(batch.polyphony[partner]))
    assert partners_seen == {1, 2}


def test_foa_feature_mix_matches_the_features_of_the_mixed_waveforms() -> None:
    """Two plane waves in disjoint bands: in bands where one dominates, the features of ``w a + (1 - w) b`` are
    what the power/intensity rule computes from the features of ``a`` and ``b``."""
    n = int(SR * 0.3)
    rng = np.random.default_rng(0)
    spectrum = np.fft.rfft(rng.standard_normal((2, n)))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    low = np.fft.irfft(spectrum[0] * ((freqs > 300) & (freqs < 1500)), n).astype(np.float32)
    high = np.fft.irfft(spectrum[1] * ((freqs > 5000) & (freqs < 9000)), n).astype(np.float32)
    a, b = plane_wave(low, unit(30, 20)), plane_wave(high, unit(-120, -10))
    weight = 0.3
    truth = features_of(weight * a + (1 - weight) * b)
    mixed = FoaFeatures().mix(features_of(a)[None], features_of(b)[None], np.array([weight]))[0]
    energy_a, energy_b = features_of(a)[0].mean(axis=0), features_of(b)[0].mean(axis=0)  # W dB per band
    clear = np.abs(energy_a - energy_b) > 40  # one source dominates the band by 40 dB
    assert clear.sum() > 10
    frames = slice(5, -5)  # away from the clip edges
    np.testing.assert_allclose(mixed[:4, frames][..., clear], truth[:4, frames][..., clear], atol=0.05)
    np.testing.assert_allclose(mixed[4:, frames][..., clear], truth[4:, frames][..., clear], atol=0.02)


# ---------------------------------------------------------------------------------------------------------------
# Composition, settings and seeding
# ---------------------------------------------------------------------------------------------------------------


def test_augmix_triples_the_batch_and_keeps_the_first_copy() -> None:
    batch = random_batch()
    settings = AugmentSettings.from_spec({"types": ["specaug", "crop", "freqshift"], "augmix": True})
    out = augment_batch(batch, settings, foa_context(), np.random.default_rng(0))
    assert len(out) == 3 * len(batch)
    np.testing.assert_array_equal(out.features[: len(batch)], batch.features)
    np.testing.assert_array_equal(out.targets[: len(batch)], batch.targets)
    assert not np.array_equal(out.features[len(batch) :], np.concatenate([batch.features] * 2))


def test_same_seed_epoch_and_batch_give_the_same_augmented_batch() -> None:
    batch = random_batch(frames=25)
    augmenter = build_augmenter(
        {"types": ["specaug", "crop", "freqshift", "rotate", "trackmix", "wavmix"], "augmix": True},
        method=get_method("maccdoa"), feature_kind="foa", feature_shape=(7, 25, 16), label_frames=N_LABELS, seed=7,
    )  # fmt: skip
    inputs = torch.from_numpy(batch.features), torch.from_numpy(batch.targets)
    first = augmenter(*inputs, epoch=3, batch=2)
    again = augmenter(*inputs, epoch=3, batch=2)
    other = augmenter(*inputs, epoch=3, batch=1)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    np.testing.assert_array_equal(batch.features, inputs[0].numpy())  # the input batch is left as it was


def test_no_augmentation_builds_no_augmenter() -> None:
    for spec in (None, {}, {"types": []}, {"types": [], "augmix": True}):
        augmenter = build_augmenter(
            spec, method=get_method("maccdoa"), feature_kind="pfoa", feature_shape=(7, 251, 64), label_frames=50, seed=0
        )
        assert augmenter is None


def test_bad_settings_are_config_errors_naming_the_key() -> None:
    method = get_method("maccdoa")
    cases = [
        ({"types": ["mixup"]}, "augment.types", "foa", method),
        ({"types": ["rotate"]}, "augment.types", "pfoa", method),
        ({"types": ["wavmix"]}, "augment.types", "mic", method),
        ({"types": ["freqshift"]}, "augment.types", "mic", method),
        ({"types": ["rotate"]}, "augment.types", "foa", get_method("maccdoa_xyd")),
        ({"types": ["specaug"]}, "augment.types", "foa", None),
        ({"rotate": {"patterns": 24}}, "augment.rotate.patterns", "foa", method),
        ({"wavmix": {"p": 1.5}}, "augment.wavmix.p", "foa", method),
        ({"crop": {"widht": 3}}, "augment.crop.widht", "foa", method),
        ({"types": ["freqshift"], "freqshift": {"max_shift": 100}}, "augment.freqshift.max_shift", "foa", method),
        ({"augmx": True}, "augment.augmx", "foa", method),
    ]
    for spec, key, kind, chosen in cases:
        with pytest.raises(ConfigError) as error:
            check_augment(spec, feature_kind=kind, method=chosen, n_bins=64)
        assert error.value.key == key, spec


# ---------------------------------------------------------------------------------------------------------------
# Mono mode
# ---------------------------------------------------------------------------------------------------------------


def test_mono_to_foa_is_the_plane_wave_of_the_direction() -> None:
    signal = noise(0.01)
    az, el = math.radians(-130), math.radians(35)
    foa = mono_to_foa(signal, -130, 35)
    expected = np.stack(
        [signal, math.sin(az) * math.cos(el) * signal, math.sin(el) * signal, math.cos(az) * math.cos(el) * signal]
    )
    np.testing.assert_allclose(foa, expected, atol=1e-6)
    np.testing.assert_allclose(mono_to_foa(np.stack([signal, -signal]), -130, 35), expected, atol=1e-6)


def test_spatialize_mono_moves_audio_and_labels_to_one_random_direction() -> None:
    table = events((0, 2, 0, 0), (1, 2, 0, 0), (3, 0, 0, 0))
    foa, moved, (azimuth, elevation) = spatialize_mono(noise(), table, np.random.default_rng(11))
    assert -180 <= azimuth < 180 and -90 <= elevation < 90
    assert (moved[:, 3] == azimuth).all() and (moved[:, 4] == elevation).all()
    np.testing.assert_array_equal(moved[:, :3], table[:, :3])
    np.testing.assert_allclose(intensity_direction(features_of(foa)), unit(azimuth, elevation), atol=1e-3)
    again = spatialize_mono(noise(), table, np.random.default_rng(11))
    np.testing.assert_array_equal(again[0], foa)
    with pytest.raises(ValueError, match="single-source"):
        spatialize_mono(noise(), events((0, 2, 0, 0), (0, 1, 0, 0)), np.random.default_rng(0))
