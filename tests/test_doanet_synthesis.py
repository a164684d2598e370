"""The embedded DOAnet dataset: tetrahedral-array room responses, and clips rendered in the TAU-NIGENS layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seldflow.doanet.synthesis import make_bank, make_room, render_split
from seldflow.formats.events import EV_AZIMUTH, EV_ELEVATION, EV_FRAME
from seldflow.synthesize.rooms import TETRA_RADIUS_M, array_impulse_responses, tetra_capsules
from seldflow.synthesize.sofa import read_sofa
from seldflow.tau_nigens2020 import SAMPLE_RATE, dev_recordings, read_metadata

GRID = {"azimuth_step_deg": 90, "elevations_deg": [0, 20], "distances_m": [1.0], "ir_seconds": 0.05}
MIXTURES = {
    "max_sources": 2,
    "events_per_clip": [2, 3],
    "moving_probability": 0.5,
    "angular_speed_deg_s": [20.0, 40.0],
    "snr_db": [20.0, 30.0],
    "noise_level_db": -40.0,
    "peak_level": 0.9,
}


def test_capsules_form_the_dcase_tetrahedron() -> None:
    capsules = tetra_capsules()
    np.testing.assert_allclose(np.linalg.norm(capsules, axis=1), TETRA_RADIUS_M)
    # (45°, 35°): x = y > 0, z > 0; (-45°, -35°): x > 0, y < 0, z < 0; opposite pairs point apart.
    assert capsules[0][0] == pytest.approx(capsules[0][1]) and capsules[0][2] > 0
    assert capsules[1][1] < 0 < capsules[1][0] and capsules[1][2] < 0
    assert capsules[2][0] < 0 < capsules[2][1] and capsules[3][0] < 0 and capsules[3][1] < 0
    # a regular-ish tetrahedron: every pair of capsules between 60 and 70 mm apart (35.26° elevations)
    distances = [np.linalg.norm(a - b) for i, a in enumerate(capsules) for b in capsules[i + 1 :]]
    assert min(distances) > 0.060 and max(distances) < 0.070


def test_mic_direct_path_arrives_after_each_capsules_own_distance() -> None:
    """In an anechoic-like room (huge, absorbing) the strongest tap of each capsule sits at its distance to the
    source divided by the speed of sound, plus the builder's constant half-filter delay, as computed by hand."""
    import pyroomacoustics as pra

    dims, centre = np.array([40.0, 40.0, 40.0]), np.array([20.0, 20.0, 20.0])
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(0.99), max_order=0)
    room.add_microphone(centre)
    source = centre + np.array([0.0, 2.0, 0.0])  # 2 m to the left (+y)
    responses = array_impulse_responses(room, source, centre, 2048, mic=True)
    delay = pra.constants.get("frac_delay_length") // 2
    for capsule, channel in zip(tetra_capsules(), responses["mic"], strict=True):
        expected = np.linalg.norm(source - (centre + capsule)) / room.c * SAMPLE_RATE + delay
        assert abs(int(np.argmax(np.abs(channel))) - expected) <= 0.5
    # capsules on the left (positive y) hear it first, by about 2 · 0.042 · cos(35°) sin(45°) / c
    peaks = [np.argmax(np.abs(channel)) for channel in responses["mic"]]
    assert peaks[0] < peaks[1] and peaks[2] < peaks[3]
    # FOA: W = 1/r, Y = 1/r, X = Z = 0 for a source on the +y axis
    w, y, z, x = (np.abs(channel).max() for channel in responses["foa"])
    assert w == pytest.approx(0.5, rel=0.02) and y == pytest.approx(w, rel=1e-3) and max(x, z) < 1e-3 * w


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("embedded")
    make_bank(root / "bank", {"clips_per_class": {"train": 1}, "min_seconds": 0.5, "max_seconds": 1.0}, seed=3)
    spec = {"dims": [5.0, 4.0, 3.0], "rt60": 0.2, "array": [2.5, 2.0, 1.5]}
    make_room(root / "r_foa.sofa", root / "r_mic.sofa", spec, GRID, "r")
    out = {name: root / "data" / name for name in ("foa", "mic", "metadata")}
    render_split(
        split="train",
        rooms={"r": {"foa": root / "r_foa.sofa", "mic": root / "r_mic.sofa"}},
        room_numbers=[4],
        bank_dir=root / "bank",
        source_split="train",
        out_dirs=out,
        n_clips=6,
        clip_seconds=2.0,
        mixtures=MIXTURES,
        seed=11,
    )
    return {"root": root, **out}


def test_rooms_hold_the_same_positions_in_both_formats(rendered: dict[str, Path]) -> None:
    foa, mic = read_sofa(rendered["root"] / "r_foa.sofa"), read_sofa(rendered["root"] / "r_mic.sofa")
    np.testing.assert_allclose(foa.positions, mic.positions)
    assert foa.irs.shape == mic.irs.shape == (8, 4, round(0.05 * SAMPLE_RATE))


def test_clips_follow_the_tau_nigens_layout_and_labels(rendered: dict[str, Path]) -> None:
    stems = sorted(path.stem for path in rendered["metadata"].glob("*.csv"))
    assert len(stems) == 6
    # training clips go round-robin to folds 3-6, the room keeps its configured number
    assert [stem.split("_")[0] for stem in stems] == ["fold3", "fold3", "fold4", "fold4", "fold5", "fold6"]
    assert all(stem.split("_")[1] == "room4" for stem in stems)
    for stem in stems:
        for fmt in ("foa", "mic"):
            info = sf.info(str(rendered[fmt] / f"{stem}.wav"))
            assert (info.samplerate, info.channels, info.frames) == (SAMPLE_RATE, 4, 2 * SAMPLE_RATE)
        events = read_metadata(rendered["metadata"] / f"{stem}.csv")
        frames = events[:, EV_FRAME]
        assert (np.diff(frames) >= 0).all() and frames.max() < 20
        _, per_frame = np.unique(frames, return_counts=True)
        assert per_frame.max() <= 2 and stem.endswith(f"_ov{per_frame.max()}")
        # static events sit on the grid: elevations 0 or 20 (moving ones turn in azimuth only)
        assert set(np.unique(events[:, EV_ELEVATION])) <= {0.0, 20.0}
        assert (np.abs(events[:, EV_AZIMUTH]) <= 180).all()


def test_the_adapter_of_the_real_dataset_reads_the_embedded_one(rendered: dict[str, Path]) -> None:
    root = rendered["root"] / "data"
    (root / "foa").rename(root / "foa_dev")
    (root / "mic").rename(root / "mic_dev")
    (root / "metadata").rename(root / "metadata_dev")
    try:
        assert len(dev_recordings(root, "mic", split="train")) == 6
        assert dev_recordings(root, "foa", split=None)[0].fold == 3
    finally:
        for name in ("foa", "mic", "metadata"):
            (root / f"{name}_dev").rename(root / name)


def test_rendering_is_deterministic(rendered: dict[str, Path], tmp_path: Path) -> None:
    root = rendered["root"]
    out = {name: tmp_path / name for name in ("foa", "mic", "metadata")}
    render_split(
        split="train",
        rooms={"r": {"foa": root / "r_foa.sofa", "mic": root / "r_mic.sofa"}},
        room_numbers=[4],
        bank_dir=root / "bank",
        source_split="train",
        out_dirs=out,
        n_clips=2,
        clip_seconds=2.0,
        mixtures=MIXTURES,
        seed=11,
    )
    for name, folder in out.items():
        for path in folder.iterdir():
            assert path.read_bytes() == (rendered[name] / path.name).read_bytes()
