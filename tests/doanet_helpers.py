"""Shared DOAnet test material: a CPU-trained Hnet (cached for the session) and tiny plane-wave FOA clips."""

from __future__ import annotations

import functools

import numpy as np
import torch

from seldflow.doanet.hnet import HnetTrainResult, HnetTrainSettings, HungarianNet, train_hnet
from seldflow.doanet.hnet_data import HnetData, generate_hnet_data
from seldflow.doanet.labels import doa_targets
from seldflow.feature_kinds import foa_logmel_iv

# One resolution, a fifth of the reference's per-resolution counts (9,000 examples), a tenth of those held out.
HNET_RESOLUTION = 5
HNET_COUNTS = (600, 1000, 3000)
HNET_TEST_COUNTS = (60, 100, 300)
HNET_SETTINGS = HnetTrainSettings(epochs=80, batch_size=64, lr=1e-3, seed=0, stop_f1=0.955)

SAMPLE_RATE = 24000
HOP = 480  # 20 ms feature frames, five per 100-ms label frame
N_MELS = 16


@functools.cache
def hnet_test_data() -> HnetData:
    return generate_hnet_data(2, [HNET_RESOLUTION], HNET_TEST_COUNTS, seed=2)


@functools.cache
def trained_hnet() -> tuple[HungarianNet, HnetTrainResult]:
    """Hnet trained on CPU for the tests (tens of seconds), frozen, with its training result."""
    train = generate_hnet_data(2, [HNET_RESOLUTION], HNET_COUNTS, seed=1)
    result = train_hnet(train, hnet_test_data(), HNET_SETTINGS)
    model = HungarianNet(**result.model_args)
    model.load_state_dict(result.model_state)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval(), result


def plane_wave_clips(n_clips: int, seconds: float = 1.0, seed: int = 0, mode: str = "mse"):
    """FOA clips with one or two static white-noise plane waves, their standardised features ``(n, 7, T, 16)``
    and class-agnostic targets ``(n, T/5, 2, 3)``, ``(n, T/5, 2)``."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * SAMPLE_RATE)
    n_frames = samples // (5 * HOP)
    features, doas, activities = [], [], []
    for _ in range(n_clips):
        n_sources = int(rng.integers(1, 3))
        azimuth = rng.uniform(-180, 180, n_sources)
        elevation = rng.uniform(-60, 60, n_sources)
        foa = np.zeros((4, samples))
        rows = []
        for az, el in zip(azimuth, elevation, strict=True):
            a, e = np.radians(az), np.radians(el)
            signal = 0.1 * rng.standard_normal(samples)
            # ACN W, Y, Z, X with SN3D gains of a plane wave
            foa += signal * np.array([1.0, np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])[:, None]
            rows += [[frame, 0, len(rows) // n_frames, az, el, np.nan] for frame in range(n_frames)]
        feats = foa_logmel_iv(
            foa.astype(np.float32), sample_rate=SAMPLE_RATE, n_fft=1024, win_length=960, hop_length=HOP, n_mels=N_MELS
        )
        features.append(feats[:, : n_frames * 5])
        targets = doa_targets(np.array(rows), n_frames, mode=mode)
        doas.append(targets.doa)
        activities.append(targets.activity)
    features_array = np.stack(features)
    mean = features_array.mean(axis=(0, 2, 3), keepdims=True)
    std = features_array.std(axis=(0, 2, 3), keepdims=True)
    return (
        torch.as_tensor((features_array - mean) / std, dtype=torch.float32),
        torch.as_tensor(np.stack(doas)),
        torch.as_tensor(np.stack(activities)),
    )


def plane_wave_foa(rng: np.random.Generator, samples: int, azimuth: float, elevation: float) -> np.ndarray:
    """White noise from one direction in ACN W, Y, Z, X with SN3D gains, ``(4, samples)``."""
    a, e = np.radians(azimuth), np.radians(elevation)
    gains = np.array([1.0, np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
    return 0.2 * rng.standard_normal(samples) * gains[:, None]


def write_tau_dataset(root, recordings: dict[str, list[tuple[int, int, float, float]]], seconds: float = 1.0) -> None:
    """A TAU-NIGENS 2020-style tree under ``root``: for each stem its events ``(first frame, last frame, azimuth,
    elevation)`` as static plane waves, FOA and (the same audio as a stand-in) MIC, and the DCASE2020 labels."""
    from pathlib import Path

    import soundfile as sf

    root = Path(root)
    for folder in ("foa_dev", "mic_dev", "metadata_dev"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    samples = int(seconds * SAMPLE_RATE)
    hop = SAMPLE_RATE // 10
    for number, (stem, events) in enumerate(sorted(recordings.items())):
        rng = np.random.default_rng(number)
        audio = 0.001 * rng.standard_normal((4, samples))
        rows = []
        for track, (first, last, azimuth, elevation) in enumerate(events):
            audio[:, first * hop : (last + 1) * hop] += plane_wave_foa(rng, samples, azimuth, elevation)[
                :, first * hop : (last + 1) * hop
            ]
            rows += [(frame, track, azimuth, elevation) for frame in range(first, last + 1)]
        for folder in ("foa_dev", "mic_dev"):
            sf.write(root / folder / f"{stem}.wav", audio.T.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
        lines = [f"{frame},0,{track},{azimuth:g},{elevation:g}" for frame, track, azimuth, elevation in sorted(rows)]
        (root / "metadata_dev" / f"{stem}.csv").write_text("".join(line + "\n" for line in lines))


# A tiny dataset: test fold 1, validation fold 2, training folds 3 and 4 (two single-source scenes in one room of
# fold 3, for the overlap augmentation); 1-s recordings, 10 label frames.
TINY_RECORDINGS = {
    "fold1_room1_mix001_ov1": [(0, 9, 30.0, 0.0)],
    "fold1_room1_mix002_ov2": [(0, 6, -60.0, 10.0), (3, 9, 120.0, -10.0)],
    "fold2_room2_mix001_ov1": [(2, 9, 90.0, 0.0)],
    "fold2_room2_mix002_ov1": [(0, 5, -120.0, 20.0)],
    "fold3_room3_mix001_ov1": [(0, 9, 0.0, 0.0)],
    "fold3_room3_mix002_ov1": [(1, 8, 150.0, 10.0)],
    "fold3_room3_mix003_ov1": [(0, 4, -30.0, -20.0)],
    "fold4_room4_mix001_ov2": [(0, 9, 60.0, 0.0), (2, 7, -90.0, 0.0)],
}
