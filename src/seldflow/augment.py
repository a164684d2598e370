"""PSELDNets' training augmentations ("augmix"), applied on the fly to feature batches, and its mono-to-FOA mode.

Six augmentations, each switched on by naming it in ``train.augment.types`` (none by default):

* ``specaug`` — SpecAugment: ``time_masks`` time masks up to ``time_width`` feature frames, drawn in whole label
  frames, over every channel and bin, and ``freq_masks`` frequency masks up to ``freq_width`` bins, drawn
  independently per clip and channel. As in PSELDNets the label frames under a time mask are silenced too
  (``mask_labels``): their audio is gone. Frequency masks leave the labels alone.
* ``crop`` — PSELDNets' "crop" is a cut-out, not a crop in time: ``patches`` rectangles of at most
  ``time_width`` frames by ``freq_width`` bins per clip and channel are set to ``mask_value``. Frames and labels
  keep their alignment; the labels are unchanged.
* ``freqshift`` — with probability ``p`` per clip, the whole spectrogram moves up or down by ``0 .. max_shift - 1``
  bins, the edge filled by reflection. Labels unchanged.
* ``rotate`` — with probability ``p`` per clip, one of the sound-field rotations and reflections of Mazzon et al.
  (the 16 that swap x and y or not and flip any sign, or all 48 signed permutations of x, y, z), applied to the
  FOA features and the targets' directions alike.
* ``trackmix`` — every single-source clip (polyphony 1) is mixed with another (a permutation of them, possibly
  itself) at a weight drawn from Beta(``alpha``, ``alpha``): the features linearly, as PSELDNets mixes features;
  the labels keep both clips' events, activities scaled by the weights (:meth:`Method.mix_targets`).
* ``wavmix`` — with probability ``p`` per batch, the single-source clips are mixed with a permutation of the
  single-source or (equally likely) of the two-source clips, as PSELDNets mixes waveforms. The features here are
  precomputed, so the mixture is formed on them: mel power adds (``λ² P1 + (1 - λ)² P2``, exact in expectation for
  uncorrelated sources) and each band's intensity direction is the two clips' directions weighted by their
  shares of the W power. Labels as trackmix.

**Composition** (PSELDNets' ``common_step``): ``rotate`` and ``wavmix`` (waveform augmentations there) act on
the whole batch first; then one non-empty combination of the other selected augmentations, drawn uniformly, is
applied in random order. With ``augmix`` the batch is first tripled: the first copy skips the combination, the
second and third draw one each, so a batch of B clips trains as 3B.

Every random choice comes from a generator seeded by (seed, epoch, batch, rank) (:class:`Augmenter`), so a
resumed run augments exactly as an uninterrupted one, whatever the number of loader workers. Rotation and
wavmix need the FOA ``logmelIV`` layout (feature kind ``foa``); a 3-D method (``maccdoa``, ``maccdoa_dist``,
``accdoa``, ``einv2``) for rotation; freqshift a frequency axis in every channel (not the ``mic`` kind's GCC-PHAT).

**Mono mode** (AdapterBit on mono clips): :func:`spatialize_mono` turns a mono clip into a plane wave from a
random direction in first-order Ambisonics and rewrites its single-source labels to that direction.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from seldflow.errors import ConfigError
from seldflow.feature_kinds import DB_AMIN, FOA_IV_CHANNELS
from seldflow.formats.events import EV_AZIMUTH, EV_ELEVATION, EV_FRAME
from seldflow.tasks.seld_methods import Method

# Applied to the whole batch before the drawn combination (PSELDNets applies them to the waveforms).
WHOLE_BATCH: tuple[str, ...] = ("rotate", "wavmix")
# Copies of each clip in an augmix batch; the first is left out of the drawn combinations.
AUGMIX_COPIES = 3
# Rotation pattern sets (``rotate.patterns``): 16 = x/y swapped or not, 48 = every permutation; all sign flips.
ROTATION_SETS: dict[int, tuple[tuple[int, int, int], ...]] = {
    16: ((0, 1, 2), (1, 0, 2)),
    48: tuple(itertools.permutations(range(3))),
}
# First-order ACN channel of each Cartesian axis x, y, z (ACN 1 is Y, 2 is Z, 3 is X).
ACN_OF_AXIS: tuple[int, int, int] = (3, 1, 2)
# Tag of the augmentation's random stream, apart from the batch order's (seed, epoch) stream.
_STREAM = 0x61756778
# Feature kinds whose last axis is frequency in every channel, so that freqshift moves a spectrum (the mic kind's
# GCC-PHAT channels hold time lags there: shifting them would move the sources).
FREQUENCY_AXIS_KINDS: tuple[str, ...] = ("pfoa", "logmel", "foa")


# ---------------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecAugSettings:
    time_width: int = 40  # feature frames (PSELDNets: 40 at a 10-ms hop)
    freq_width: int = 8
    time_masks: int = 4
    freq_masks: int = 2
    mask_value: float = 0.0
    mask_labels: bool = True


@dataclass(frozen=True)
class CropSettings:
    time_width: int = 8
    freq_width: int = 4
    patches: int = 4
    mask_value: float = 0.0


@dataclass(frozen=True)
class FreqShiftSettings:
    p: float = 0.5
    max_shift: int = 15


@dataclass(frozen=True)
class RotateSettings:
    p: float = 0.8
    patterns: int = 48


@dataclass(frozen=True)
class TrackMixSettings:
    alpha: float = 0.5


@dataclass(frozen=True)
class WavMixSettings:
    alpha: float = 0.5
    p: float = 0.5


@dataclass(frozen=True)
class AugmentSettings:
    """``train.augment``; the parameters of each augmentation default to PSELDNets' ``configs/augment``."""

    types: tuple[str, ...] = ()
    augmix: bool = False
    specaug: SpecAugSettings = field(default_factory=SpecAugSettings)
    crop: CropSettings = field(default_factory=CropSettings)
    freqshift: FreqShiftSettings = field(default_factory=FreqShiftSettings)
    rotate: RotateSettings = field(default_factory=RotateSettings)
    trackmix: TrackMixSettings = field(default_factory=TrackMixSettings)
    wavmix: WavMixSettings = field(default_factory=WavMixSettings)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> AugmentSettings:
        """Settings from a ``train.augment`` mapping; keys left out keep their defaults, unknown keys fail."""
        spec = dict(spec or {})
        known = {f.name for f in fields(cls)}
        for key in spec:
            if key not in known:
                raise ConfigError("train", f"augment.{key}", f"unknown key (known: {', '.join(sorted(known))})")
        types = tuple(spec.pop("types", ()) or ())
        for name in types:
            if name not in AUGMENTATIONS:
                raise ConfigError(
                    "train", "augment.types", f"unknown augmentation {name!r} (known: {', '.join(AUGMENTATIONS)})"
                )
        if len(set(types)) != len(types):
            raise ConfigError("train", "augment.types", f"{list(types)} names an augmentation twice")
        settings = cls(types=types, augmix=bool(spec.pop("augmix", False)))
        for name, values in spec.items():
            default = getattr(settings, name)
            allowed = {f.name for f in fields(default)}
            for key in values or {}:
                if key not in allowed:
                    raise ConfigError("train", f"augment.{name}.{key}", f"unknown key (known: {', '.join(allowed)})")
            settings = replace(settings, **{name: replace(default, **dict(values or {}))})
        _check_ranges(settings)
        return settings

    @property
    def enabled(self) -> bool:
        return bool(self.types)

    def spec(self) -> dict[str, Any]:
        """Every setting as plain types (the training fingerprint)."""
        spec = asdict(self)
        spec["types"] = list(self.types)
        return spec


def _check_ranges(settings: AugmentSettings) -> None:
    for name, value in (
        ("freqshift.p", settings.freqshift.p),
        ("rotate.p", settings.rotate.p),
        ("wavmix.p", settings.wavmix.p),
    ):
        if not 0.0 <= value <= 1.0:
            raise ConfigError("train", f"augment.{name}", f"must be a probability in [0, 1], got {value}")
    for name, value in (("trackmix.alpha", settings.trackmix.alpha), ("wavmix.alpha", settings.wavmix.alpha)):
        if value <= 0:
            raise ConfigError("train", f"augment.{name}", f"the Beta parameter must be positive, got {value}")
    if settings.rotate.patterns not in ROTATION_SETS:
        raise ConfigError("train", "augment.rotate.patterns", f"must be one of {sorted(ROTATION_SETS)}")
    counts = {  # name -> (value, smallest allowed)
        "specaug.time_width": (settings.specaug.time_width, 0),
        "specaug.freq_width": (settings.specaug.freq_width, 0),
        "specaug.time_masks": (settings.specaug.time_masks, 0),
        "specaug.freq_masks": (settings.specaug.freq_masks, 0),
        "crop.time_width": (settings.crop.time_width, 0),
        "crop.freq_width": (settings.crop.freq_width, 0),
        "crop.patches": (settings.crop.patches, 0),
        "freqshift.max_shift": (settings.freqshift.max_shift, 1),
    }
    for name, (value, smallest) in counts.items():
        if value < smallest:
            raise ConfigError("train", f"augment.{name}", f"must be at least {smallest}, got {value}")


def check_augment(
    spec: Mapping[str, Any] | None, *, feature_kind: str, method: Method | None, n_bins: int | None = None
) -> AugmentSettings:
    """The settings of ``spec``, checked against the features and the method (the task's
    :meth:`~seldflow.tasks.Task.label_augmentation`, ``None`` for a task without one) they will train on."""
    settings = AugmentSettings.from_spec(spec)
    if settings.enabled and method is None:
        raise ConfigError("train", "augment.types", "this task's targets cannot be augmented")
    spatial = [name for name in WHOLE_BATCH if name in settings.types]
    if spatial and feature_kind not in SPATIAL_LAYOUTS:
        verb = "needs" if len(spatial) == 1 else "need"
        message = f"{' and '.join(spatial)} {verb} FOA logmelIV features (features.kind foa), not {feature_kind!r}"
        raise ConfigError("train", "augment.types", message)
    if "rotate" in settings.types and not method.directions_3d:
        raise ConfigError("train", "augment.types", f"rotate moves x, y, z directions; method {method.name!r} has none")
    if "freqshift" in settings.types and feature_kind not in FREQUENCY_AXIS_KINDS:
        message = f"freqshift moves every channel along the last axis, which is not frequency in {feature_kind!r}"
        raise ConfigError("train", "augment.types", message)
    if "freqshift" in settings.types and n_bins is not None and settings.freqshift.max_shift > n_bins:
        raise ConfigError(
            "train", "augment.freqshift.max_shift", f"{settings.freqshift.max_shift} exceeds the {n_bins} bins"
        )
    return settings


# ---------------------------------------------------------------------------------------------------------------
# Batches and the FOA feature layout
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Batch:
    """Features ``(B, C, T, F)``, targets ``(B, T_label, ...)`` and each clip's polyphony (PSELDNets' ``ov``)."""

    features: np.ndarray
    targets: np.ndarray
    polyphony: np.ndarray

    def __len__(self) -> int:
        return len(self.features)

    def part(self, index: slice) -> Batch:
        return Batch(self.features[index], self.targets[index], self.polyphony[index])

    @staticmethod
    def join(parts: Sequence[Batch]) -> Batch:
        return Batch(
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.targets for p in parts]),
            np.concatenate([p.polyphony for p in parts]),
        )


@dataclass(frozen=True)
class FoaFeatures:
    """Where the axes x, y, z sit in the ``foa`` kind's channels: a log-mel channel and an intensity channel each.

    Derived from the kind's facts (:mod:`seldflow.feature_kinds`): log-mel channels 0-3 are ACN W, Y, Z, X;
    intensity channel ``4 + k`` is the component of ACN channel ``FOA_IV_CHANNELS[k]``.
    """

    logmel: tuple[int, int, int] = ACN_OF_AXIS
    intensity: tuple[int, int, int] = tuple(4 + FOA_IV_CHANNELS.index(acn) for acn in ACN_OF_AXIS)
    w_channel: int = 0

    def transform(self, features: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Features ``(..., C, T, F)`` of the sound field transformed by a signed-permutation ``matrix``.

        Exact: new axis ``i`` is old axis ``j`` times a sign; a log-mel ignores the sign, and the unit-normalised
        intensity commutes with any orthogonal map.
        """
        turned = np.array(features, copy=True)
        for axis in range(3):
            source = int(np.argmax(np.abs(matrix[axis])))
            sign = float(matrix[axis, source])
            turned[..., self.logmel[axis], :, :] = features[..., self.logmel[source], :, :]
            turned[..., self.intensity[axis], :, :] = sign * features[..., self.intensity[source], :, :]
        return turned

    def mix(self, first: np.ndarray, second: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Features ``(n, C, T, F)`` of ``weight * a + (1 - weight) * b`` from those of ``a`` and ``b``.

        Mel powers add (uncorrelated clips), floored as the features floor them; the intensity of each band is
        the weighted mean of the two directions, weighted by each clip's share of the mixture's W power.
        """
        w = np.asarray(weight, dtype=np.float64)[:, None, None, None]
        channels = list(range(4))
        power_a = np.square(w) * np.power(10.0, first[:, channels].astype(np.float64) / 10.0)
        power_b = np.square(1.0 - w) * np.power(10.0, second[:, channels].astype(np.float64) / 10.0)
        mixed = np.array(first, copy=True)
        mixed[:, channels] = 10.0 * np.log10(np.maximum(power_a + power_b, DB_AMIN))
        share = power_a[:, self.w_channel] / (power_a[:, self.w_channel] + power_b[:, self.w_channel])
        iv = list(self.intensity)
        mixed[:, iv] = share[:, None] * first[:, iv] + (1.0 - share[:, None]) * second[:, iv]
        return mixed


# Feature kinds whose channels can be rotated and mixed as a sound field, and where their axes sit.
SPATIAL_LAYOUTS: dict[str, FoaFeatures] = {"foa": FoaFeatures()}


def rotation_patterns(count: int) -> np.ndarray:
    """The ``count`` (16 or 48) signed permutation matrices of :data:`ROTATION_SETS`, ``(count, 3, 3)``.

    Row ``i`` of a matrix has its one non-zero, ``±1``, in the column of the old axis that becomes axis ``i``
    (PSELDNets' ``transform16`` / ``transform48``: new (x, y, z) = (sx·d[p0], sy·d[p1], sz·d[p2])).
    """
    matrices = []
    for permutation in ROTATION_SETS[count]:
        for signs in itertools.product((1.0, -1.0), repeat=3):
            matrix = np.zeros((3, 3))
            matrix[np.arange(3), permutation] = signs
            matrices.append(matrix)
    return np.stack(matrices)


# ---------------------------------------------------------------------------------------------------------------
# The augmentations: (batch, settings, context, rng) -> batch
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What the augmentations need to know besides the batch."""

    method: Method
    frames_per_label: int
    spatial: FoaFeatures | None


def _intervals(rng: np.random.Generator, shape: tuple[int, ...], width: float, size: int) -> tuple[Any, Any]:
    """Random ``[start, stop)`` index intervals of at most ``width`` inside ``size``, as torchaudio draws masks."""
    value = rng.random(shape) * width
    start = rng.random(shape) * (size - value)
    return np.floor(start).astype(np.int64), np.floor(start).astype(np.int64) + np.floor(value).astype(np.int64)


def specaug(batch: Batch, settings: SpecAugSettings, context: Context, rng: np.random.Generator) -> Batch:
    """Time masks in whole label frames (silencing those labels with ``mask_labels``), then frequency masks."""
    n_clips, _, n_frames, n_bins = batch.features.shape
    n_labels = batch.targets.shape[1]
    ratio = context.frames_per_label
    start, stop = _intervals(rng, (settings.time_masks, n_clips), settings.time_width // ratio, n_labels)
    labels = np.arange(n_labels)
    label_mask = np.any((labels >= start[..., None]) & (labels < stop[..., None]), axis=0)  # (B, T_label)
    frames = np.arange(n_frames)
    frame_mask = np.any((frames >= ratio * start[..., None]) & (frames < ratio * stop[..., None]), axis=0)
    features = np.where(frame_mask[:, None, :, None], np.float32(settings.mask_value), batch.features)
    targets = batch.targets
    if settings.mask_labels:
        targets = np.where(label_mask.reshape(label_mask.shape + (1,) * (targets.ndim - 2)), 0.0, targets)
    bins = np.arange(n_bins)
    for _ in range(settings.freq_masks):
        start, stop = _intervals(rng, features.shape[:2], settings.freq_width, n_bins)
        mask = (bins >= start[..., None]) & (bins < stop[..., None])  # (B, C, F)
        features = np.where(mask[:, :, None, :], np.float32(settings.mask_value), features)
    return Batch(features.astype(np.float32), targets.astype(np.float32), batch.polyphony)


def crop(batch: Batch, settings: CropSettings, context: Context, rng: np.random.Generator) -> Batch:
    """Time-frequency cut-outs per clip and channel; labels unchanged."""
    n_clips, n_channels, n_frames, n_bins = batch.features.shape
    shape = (settings.patches, n_clips, n_channels)
    t_start, t_stop = _intervals(rng, shape, settings.time_width, n_frames)
    f_start, f_stop = _intervals(rng, shape, settings.freq_width, n_bins)
    frames, bins = np.arange(n_frames), np.arange(n_bins)
    mask = np.zeros(batch.features.shape, dtype=bool)
    for k in range(settings.patches):
        in_time = (frames >= t_start[k, ..., None]) & (frames < t_stop[k, ..., None])  # (B, C, T)
        in_band = (bins >= f_start[k, ..., None]) & (bins < f_stop[k, ..., None])  # (B, C, F)
        mask |= in_time[..., :, None] & in_band[..., None, :]
    features = np.where(mask, np.float32(settings.mask_value), batch.features)
    return Batch(features, batch.targets, batch.polyphony)


def freqshift(batch: Batch, settings: FreqShiftSettings, context: Context, rng: np.random.Generator) -> Batch:
    """Each clip, with probability ``p``, shifted up or down the last axis with reflected edges; labels unchanged."""
    features = np.array(batch.features, copy=True)
    n_bins = features.shape[-1]
    for clip in range(len(batch)):
        if rng.random() >= settings.p:
            continue
        shift = int(rng.integers(settings.max_shift))
        up = rng.random() < 0.5
        pad = ((0, 0), (0, 0), (shift, 0) if up else (0, shift))
        padded = np.pad(batch.features[clip], pad, mode="reflect")
        features[clip] = padded[..., :n_bins] if up else padded[..., shift:]
    return Batch(features, batch.targets, batch.polyphony)


def rotate(batch: Batch, settings: RotateSettings, context: Context, rng: np.random.Generator) -> Batch:
    """Each clip, with probability ``p``, turned by one rotation pattern: its FOA features and its targets."""
    patterns = rotation_patterns(settings.patterns)
    features, targets = np.array(batch.features, copy=True), np.array(batch.targets, copy=True)
    for clip in range(len(batch)):
        if rng.random() >= settings.p:
            continue
        matrix = patterns[rng.integers(len(patterns))]
        features[clip] = context.spatial.transform(batch.features[clip], matrix)
        targets[clip] = context.method.transform_directions(batch.targets[clip : clip + 1], matrix)[0]
    return Batch(features, targets, batch.polyphony)


def trackmix(batch: Batch, settings: TrackMixSettings, context: Context, rng: np.random.Generator) -> Batch:
    """Single-source clips mixed with a permutation of themselves, features linearly; they count two sources."""
    base = np.flatnonzero(batch.polyphony == 1)
    if len(base) == 0:
        return batch
    partner = rng.permutation(base)
    weight = rng.beta(settings.alpha, settings.alpha, size=len(base))
    w = weight.astype(np.float32)[:, None, None, None]
    mixed = w * batch.features[base] + (1 - w) * batch.features[partner]
    return _replace(batch, base, partner, weight, mixed, context, polyphony=np.full(len(base), 2))


def wavmix(batch: Batch, settings: WavMixSettings, context: Context, rng: np.random.Generator) -> Batch:
    """With probability ``p``: single-source clips mixed with one- or two-source partners as sound fields."""
    if rng.random() > settings.p:
        return batch
    single = np.flatnonzero(batch.polyphony == 1)
    add = int(rng.integers(1, 3))  # partners with one source or with two
    pool = rng.permutation(single if add == 1 else np.flatnonzero(batch.polyphony == 2))
    count = min(len(single), len(pool))
    if count == 0:
        return batch
    base, partner = single[:count], pool[:count]
    weight = rng.beta(settings.alpha, settings.alpha, size=count)
    mixed = context.spatial.mix(batch.features[base], batch.features[partner], weight)
    return _replace(batch, base, partner, weight, mixed, context, polyphony=batch.polyphony[partner] + 1)


def _replace(
    batch: Batch,
    base: np.ndarray,
    partner: np.ndarray,
    weight: np.ndarray,
    mixed: np.ndarray,
    context: Context,
    *,
    polyphony: np.ndarray,
) -> Batch:
    """The batch with clips ``base`` replaced by their mixtures with ``partner``: features ``mixed``, the labels
    of both (:meth:`Method.mix_targets`) and the new polyphony."""
    features, targets = np.array(batch.features, copy=True), np.array(batch.targets, copy=True)
    features[base] = mixed
    targets[base] = context.method.mix_targets(batch.targets[base], batch.targets[partner], weight)
    new_polyphony = np.array(batch.polyphony, copy=True)
    new_polyphony[base] = polyphony
    return Batch(features, targets, new_polyphony)


Augmentation = Callable[[Batch, Any, Context, np.random.Generator], Batch]
# Name -> function, in PSELDNets' order; each takes its own settings (the field of AugmentSettings so named).
FUNCTIONS: dict[str, Augmentation] = {
    "specaug": specaug,
    "crop": crop,
    "freqshift": freqshift,
    "rotate": rotate,
    "trackmix": trackmix,
    "wavmix": wavmix,
}
AUGMENTATIONS: tuple[str, ...] = tuple(FUNCTIONS)


def combinations(names: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty combination of ``names`` (PSELDNets' ``aug_TF_comb``), smallest first."""
    return [combo for size in range(1, len(names) + 1) for combo in itertools.combinations(names, size)]


def augment_batch(batch: Batch, settings: AugmentSettings, context: Context, rng: np.random.Generator) -> Batch:
    """One training batch augmented as PSELDNets composes its augmentations (see the module docstring)."""
    if settings.augmix:
        batch = Batch.join([batch] * AUGMIX_COPIES)
    for name in WHOLE_BATCH:
        if name in settings.types:
            batch = FUNCTIONS[name](batch, getattr(settings, name), context, rng)
    drawn = [name for name in AUGMENTATIONS if name in settings.types and name not in WHOLE_BATCH]
    if not drawn:
        return batch
    choices = combinations(drawn)

    def apply_one(part: Batch) -> Batch:
        chosen = choices[rng.integers(len(choices))]
        for index in rng.permutation(len(chosen)):
            part = FUNCTIONS[chosen[index]](part, getattr(settings, chosen[index]), context, rng)
        return part

    if not settings.augmix:
        return apply_one(batch)
    size = len(batch) // AUGMIX_COPIES
    parts = [batch.part(slice(k * size, (k + 1) * size)) for k in range(AUGMIX_COPIES)]
    return Batch.join([parts[0], *(apply_one(part) for part in parts[1:])])


@dataclass(frozen=True)
class Augmenter:
    """The training loop's augmentation: tensors in, tensors out, random draws from (seed, epoch, batch, rank)."""

    settings: AugmentSettings
    context: Context
    seed: int

    def __call__(
        self, features: torch.Tensor, targets: torch.Tensor, *, epoch: int, batch: int, rank: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, epoch, batch, rank, _STREAM])
        array_targets = targets.numpy()
        start = Batch(features.numpy(), array_targets, self.context.method.polyphony(array_targets))
        out = augment_batch(start, self.settings, self.context, rng)
        return torch.from_numpy(np.ascontiguousarray(out.features)), torch.from_numpy(np.ascontiguousarray(out.targets))


def build_augmenter(
    spec: Mapping[str, Any] | None,
    *,
    method: Method | None,
    feature_kind: str,
    feature_shape: tuple[int, int, int],
    label_frames: int,
    seed: int,
) -> Augmenter | None:
    """The augmenter of ``train.augment`` for these features, or ``None`` when no augmentation is selected."""
    settings = check_augment(spec, feature_kind=feature_kind, method=method, n_bins=feature_shape[2])
    if not settings.enabled:
        return None
    frames_per_label = max(feature_shape[1] // label_frames, 1)
    context = Context(method=method, frames_per_label=frames_per_label, spatial=SPATIAL_LAYOUTS.get(feature_kind))
    return Augmenter(settings=settings, context=context, seed=seed)


# ---------------------------------------------------------------------------------------------------------------
# Mono mode
# ---------------------------------------------------------------------------------------------------------------


def mono_to_foa(signal: np.ndarray, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """A mono signal as a first-order Ambisonics plane wave, ``(4, N)`` ACN W, Y, Z, X with SN3D gains.

    W = s, Y = sin(az) cos(el) s, Z = sin(el) s, X = cos(az) cos(el) s (PSELDNets' ``generate_spatial_samples``).
    A 2-D input keeps its first channel, as there.
    """
    from seldflow.synthesize.rooms import foa_gains  # the project's plane-wave ACN/SN3D gains

    audio = np.asarray(signal, dtype=np.float32)
    mono = audio[0] if audio.ndim == 2 else audio
    if mono.ndim != 1:
        raise ValueError(f"expected a mono signal (samples,) or (channels, samples), got {audio.shape}")
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    direction = np.array([[np.cos(az) * np.cos(el)], [np.sin(az) * np.cos(el)], [np.sin(el)]])
    return (foa_gains(direction).astype(np.float32) * mono[None, :]).astype(np.float32)


def random_direction(rng: np.random.Generator) -> tuple[int, int]:
    """PSELDNets' draw: whole degrees, azimuth in [-180, 180), elevation in [-90, 90)."""
    return int(rng.integers(-180, 180)), int(rng.integers(-90, 90))


def spatialize_mono(
    signal: np.ndarray, events: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """A mono training clip as pseudo-FOA from a random direction, its events moved to that direction.

    ``events`` is the clip's event table (:mod:`seldflow.formats.events`); the mode holds for single-source clips
    only, so two events in one frame are a ValueError. Returns the FOA audio, the rewritten events and the
    direction (azimuth, elevation) in degrees.
    """
    table = np.array(events, dtype=np.float64, copy=True)
    frames = table[:, EV_FRAME]
    if len(np.unique(frames)) != len(frames):
        raise ValueError("mono mode needs single-source labels: a frame holds more than one event")
    azimuth, elevation = random_direction(rng)
    table[:, EV_AZIMUTH] = azimuth
    table[:, EV_ELEVATION] = elevation
    return mono_to_foa(signal, azimuth, elevation), table, (azimuth, elevation)


__all__ = [
    "AUGMENTATIONS",
    "AugmentSettings",
    "Augmenter",
    "Batch",
    "Context",
    "FoaFeatures",
    "augment_batch",
    "build_augmenter",
    "check_augment",
    "mono_to_foa",
    "rotation_patterns",
    "spatialize_mono",
]
