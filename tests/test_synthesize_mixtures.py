"""Mixture renderer: spatial cues, DCASE2025 labels, polyphony, moving sources, determinism and bad input.

The rooms here are anechoic SOFA files written by hand (one delayed impulse per position with the FOA gains of
its direction), so every expected value follows from geometry alone.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from seldflow.errors import InputError
from seldflow.formats.dcase2021 import read_events
from seldflow.formats.events import EV_AZIMUTH, EV_DISTANCE, EV_ELEVATION
from seldflow.labels import CLASS_FOLDERS, N_CLASSES, fold_azimuth, read_labels
from seldflow.synthesize.mixtures import Event, MixtureSettings, RoomGrid, event_labels, place_events, render_split
from seldflow.synthesize.sofa import Room, write_sofa
from seldflow.synthesize.sources import make_source_bank

SR = 24000
HOP = 2400
CLIP_SECONDS = 2.0
FRAMES = 20


def _spherical(azimuth_deg: float, elevation_deg: float, distance: float) -> np.ndarray:
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def _anechoic_room(path: Path, positions: list[np.ndarray], *, channels: int = 4, rate: int = SR) -> Path:
    irs = np.zeros((len(positions), channels, 16), dtype=np.float32)
    for m, position in enumerate(positions):
        distance = np.linalg.norm(position)
        u = position / distance
        irs[m, :, 4] = np.array([1.0, u[1], u[2], u[0]])[:channels] / distance
    write_sofa(path, irs, np.asarray(positions), rate, room_name=path.stem)
    return path


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bank") / "bank"
    make_source_bank(out, clips_per_class={"train": 1}, min_seconds=0.6, max_seconds=1.0, seed=3)
    return out


@pytest.fixture(scope="module")
def rooms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rooms")
    return {
        "single": _anechoic_room(root / "single.sofa", [_spherical(60.0, 0.0, 1.5)]),
        "elevated": _anechoic_room(root / "elevated.sofa", [_spherical(150.0, 30.0, 2.0)]),
        "ring": _anechoic_room(root / "ring.sofa", [_spherical(az, 0.0, 1.0) for az in range(0, 360, 45)]),
    }


def _render(out: Path, bank: Path, room: Path, **overrides: Any) -> dict[str, Path]:
    dirs = {name: out / name for name in ("stereo", "foa", "metadata")}
    args: dict[str, Any] = dict(
        rooms=[room],
        room_ids=[7],
        bank_dir=bank,
        source_split="train",
        stereo_dir=dirs["stereo"],
        foa_dir=dirs["foa"],
        metadata_dir=dirs["metadata"],
        n_clips=3,
        fold=4,
        seed=11,
        clip_seconds=CLIP_SECONDS,
    )
    args.update(overrides)
    render_split(**args)
    return dirs


def _clips(dirs: dict[str, Path]) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(deg, stereo [2, n], foa [4, n], label rows) of every rendered clip."""
    out = []
    for wav in sorted(dirs["stereo"].glob("*.wav")):
        deg = int(re.fullmatch(r"fold\d_room7_mix\d{3}_deg(\d{3})_start0000", wav.stem).group(1))
        stereo = sf.read(wav, always_2d=True)[0].T
        foa = sf.read(dirs["foa"] / wav.name, always_2d=True)[0].T
        rows = read_labels(dirs["metadata"] / f"{wav.stem}.csv", n_frames=FRAMES)
        out.append((deg, stereo, foa, rows))
    return out


def test_static_source_gives_stereo_level_foa_direction_and_labels(tmp_path: Path, bank: Path, rooms: dict) -> None:
    dirs = _render(
        tmp_path, bank, rooms["single"], n_clips=8, events_per_clip=(1, 1), moving_probability=0.0, snr_db=(60, 60)
    )
    clips = _clips(dirs)
    assert len(clips) == 8
    checked_sides = 0
    for deg, stereo, foa, rows in clips:
        rotated = np.mod(60.0 + deg + 180.0, 360.0) - 180.0  # the source as seen after the rotation
        left, right = stereo
        # Mid/side: W = (L + R) / 2 and Y' = (L - R) / 2, so <W, Y'> / <W, W> recovers sin(azimuth).
        mid, side = (left + right) / 2, (left - right) / 2
        assert np.dot(mid, side) / np.dot(mid, mid) == pytest.approx(np.sin(np.deg2rad(rotated)), abs=0.01)
        if abs(np.sin(np.deg2rad(rotated))) > 0.1:
            assert (np.sum(left**2) > np.sum(right**2)) == (np.sin(np.deg2rad(rotated)) > 0)
            checked_sides += 1
        w, y, _, x = foa
        assert np.degrees(np.arctan2(np.dot(w, y), np.dot(w, x))) == pytest.approx(rotated, abs=1.0)
        assert max(np.abs(stereo).max(), np.abs(foa).max()) == pytest.approx(0.9, abs=1 / 32768)
        assert len(rows) > 0
        np.testing.assert_array_equal(rows[:, 3], np.rint(fold_azimuth(rotated)))
        np.testing.assert_array_equal(rows[:, 4], 150)
        np.testing.assert_array_equal(rows[:, 5], int(abs(rotated) <= 50.0))
        np.testing.assert_array_equal(rows[:, 2], 0)
        np.testing.assert_array_equal(rows[:, 0], np.arange(rows[0, 0], rows[0, 0] + len(rows)))
    assert checked_sides >= 4


def _grid(positions: list[np.ndarray]) -> RoomGrid:
    irs = np.zeros((len(positions), 4, 1), dtype=np.float32)
    return RoomGrid.from_room(Room(irs=irs, positions=np.asarray(positions), sample_rate=SR, name="hand"))


@pytest.mark.parametrize(
    ("azimuth", "elevation", "deg", "expected_azimuth", "expected_onscreen"),
    [
        (150.0, 0.0, 100, -70, 0),  # 250 -> -110 (wrapped) -> -70 (folded); outside the 100-degree view
        (30.0, 0.0, 350, 20, 1),  # 380 -> 20
        (-100.0, 0.0, 0, -80, 0),  # rear left quadrant folds to the front
        (0.0, 40.0, 0, 0, 0),  # straight ahead but above the 28-degree half-height of a 640x360 frame
        (10.0, -20.0, 30, 40, 1),  # inside both half-angles
        (120.0, 0.0, 300, 60, 0),  # 420 -> 60: folded value unchanged, just outside 50 degrees
    ],
)
def test_label_rotation_and_fold_by_hand(
    azimuth: float, elevation: float, deg: int, expected_azimuth: int, expected_onscreen: int
) -> None:
    grid = _grid([_spherical(azimuth, elevation, 2.0)])
    event = Event(
        class_index=5, path=Path("x.wav"), onset=3 * HOP, length=4 * HOP, position=0, speed_deg_s=0.0, snr_db=20.0
    )
    rows = event_labels([event], grid, deg=deg, hop=HOP, n_frames=FRAMES, sample_rate=SR, field_of_view_deg=100.0)
    expected = [[frame, 5, 0, expected_azimuth, 200, expected_onscreen] for frame in (3, 4, 5, 6)]
    np.testing.assert_array_equal(rows, expected)


def test_moving_event_labels_follow_the_trajectory_by_hand() -> None:
    grid = _grid([_spherical(az, 0.0, 1.0) for az in range(0, 360, 45)])
    # Starts at 0 degrees, turns at +20 deg/s, rotated by 45: frame midpoints 0.05, 0.15, ... s after onset.
    event = Event(
        class_index=1, path=Path("x.wav"), onset=2 * HOP, length=10 * HOP - 5, position=0, speed_deg_s=20.0, snr_db=20.0
    )
    rows = event_labels([event], grid, deg=45, hop=HOP, n_frames=FRAMES, sample_rate=SR, field_of_view_deg=100.0)
    np.testing.assert_array_equal(rows[:, 0], np.arange(2, 12))
    np.testing.assert_array_equal(rows[:, 3], [46, 48, 50, 52, 54, 56, 58, 60, 62, 64])
    np.testing.assert_array_equal(rows[:, 5], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])


def test_placement_never_exceeds_max_polyphony() -> None:
    grid = _grid([_spherical(0.0, 0.0, 1.0)])
    lengths = {Path(f"{c}.wav"): (c + 3) * HOP + 17 for c in range(N_CLASSES)}
    files = {c: [Path(f"{c}.wav")] for c in range(N_CLASSES)}
    settings = MixtureSettings(clip_seconds=CLIP_SECONDS, max_polyphony=2, events_per_clip=(4, 8))
    peak = 0
    for seed in range(200):
        events = place_events(np.random.default_rng(seed), files, lambda p: np.ones(lengths[p]), grid, settings)
        activity = np.zeros(FRAMES, dtype=int)
        for event in events:
            assert event.onset % HOP == 0
            assert event.length == lengths[event.path]
            activity[event.onset // HOP : -(-(event.onset + event.length) // HOP)] += 1
        assert activity.max() <= 2
        peak = max(peak, activity.max())
        assert [e.onset for e in events] == sorted(e.onset for e in events)
    assert peak == 2  # the limit was reached, so it was actually enforced


def test_rendered_labels_respect_max_polyphony(tmp_path: Path, bank: Path, rooms: dict) -> None:
    dirs = _render(tmp_path, bank, rooms["ring"], n_clips=6, events_per_clip=(6, 6), max_polyphony=2)
    counts = np.concatenate([np.bincount(rows[:, 0], minlength=FRAMES) for *_, rows in _clips(dirs)])
    assert counts.max() == 2
    for *_, rows in _clips(dirs):
        sources = np.unique(rows[:, 2])
        np.testing.assert_array_equal(sources, np.arange(sources.size))  # one id per event


def test_moving_source_is_rendered_along_its_labelled_trajectory(tmp_path: Path, bank: Path, rooms: dict) -> None:
    dirs = _render(
        tmp_path, bank, rooms["ring"], n_clips=4, events_per_clip=(1, 1), moving_probability=1.0, snr_db=(60, 60)
    )
    for _, _, foa, rows in _clips(dirs):
        assert np.unique(rows[:, 3]).size >= 3
        frames = [foa[:, frame * HOP : (frame + 1) * HOP] for frame in rows[:, 0]]
        loudness = np.array([np.sqrt(np.mean(f[0] ** 2)) for f in frames])
        # Whole frames only, and not the pauses inside an event (laughter, knocks) where noise dominates.
        for (w, y, _, x), azimuth, level in zip(frames[1:-1], rows[1:-1, 3], loudness[1:-1], strict=True):
            if level > 0.1 * loudness.max():
                measured = np.degrees(np.arctan2(np.dot(w, y), np.dot(w, x)))
                assert fold_azimuth(measured) == pytest.approx(azimuth, abs=2.0)


def test_3d_labels_describe_the_foa_scene_unfolded(tmp_path: Path, bank: Path, rooms: dict) -> None:
    """DCASE2021-format labels: the FOA file's intensity direction, rear azimuths and elevation kept."""
    static = {"events_per_clip": (1, 1), "snr_db": (60, 60), "moving_probability": 0.0}
    dirs = _render(tmp_path, bank, rooms["elevated"], n_clips=3, label_format="dcase2021", **static)
    for path in sorted(dirs["metadata"].glob("*.csv")):
        assert not path.read_text().startswith("frame")  # headerless, as the DCASE2021 metadata
        events = read_events(path, n_classes=N_CLASSES)
        foa, _ = sf.read(dirs["foa"] / f"{path.stem}.wav", dtype="float32", always_2d=True)
        w, y, z, x = foa.T
        measured_az = np.degrees(np.arctan2(np.dot(w, y), np.dot(w, x)))
        measured_el = np.degrees(np.arctan2(np.dot(w, z), np.hypot(np.dot(w, x), np.dot(w, y))))
        deg = int(re.search(r"deg(\d+)", path.stem).group(1))
        expected_az = (150.0 + deg + 180.0) % 360.0 - 180.0  # rotated by the viewing angle, never folded
        np.testing.assert_allclose(events[:, EV_ELEVATION], 30.0)
        np.testing.assert_allclose(events[:, EV_AZIMUTH], np.rint(expected_az))
        assert abs((measured_az - expected_az + 180.0) % 360.0 - 180.0) < 1.0
        assert measured_el == pytest.approx(30.0, abs=1.0)
        assert np.isnan(events[:, EV_DISTANCE]).all()  # the DCASE2021 format has no distance


def _digests(dirs: dict[str, Path]) -> dict[str, str]:
    return {
        f"{kind}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for kind, d in dirs.items()
        for p in sorted(d.iterdir())
    }


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, bank: Path, rooms: dict) -> None:
    first = _digests(_render(tmp_path / "a", bank, rooms["ring"]))
    again = _digests(_render(tmp_path / "b", bank, rooms["ring"]))
    other = _digests(_render(tmp_path / "c", bank, rooms["ring"], seed=12))
    assert len(first) == 9 and first == again
    assert not set(first.values()) & set(other.values())
    # Clip k depends only on (seed, fold, k): rendering fewer clips leaves the first ones unchanged.
    fewer = _digests(_render(tmp_path / "d", bank, rooms["ring"], n_clips=2))
    assert fewer.items() <= first.items()
    other_fold = _render(tmp_path / "e", bank, rooms["ring"], fold=3)
    assert not set(_digests(other_fold).values()) & set(first.values())
    # Shards: clips 1..2 rendered on their own are the same files as in the whole split.
    shard = _digests(_render(tmp_path / "f", bank, rooms["ring"], n_clips=2, first_clip=1))
    assert len(shard) == 6 and shard.items() <= first.items()
    assert sorted({re.search(r"mix\d+", name).group() for name in shard}) == ["mix002", "mix003"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"events_per_clip": (3, 1)},
        {"clip_seconds": 0.25},
        {"peak_level": 1.5},
        {"max_polyphony": 0},
        {"room_ids": [1, 2]},
        {"fold": -1},
    ],
)
def test_invalid_settings_are_rejected_before_writing(
    tmp_path: Path, bank: Path, rooms: dict, overrides: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        _render(tmp_path / "out", bank, rooms["ring"], **overrides)
    assert not (tmp_path / "out").exists()


def test_missing_class_folder_is_an_input_error(tmp_path: Path, bank: Path, rooms: dict) -> None:
    partial = tmp_path / "partial"
    for folder in CLASS_FOLDERS[1:]:
        (partial / folder / "train").mkdir(parents=True)
        for wav in (bank / folder / "train").glob("*.wav"):
            (partial / folder / "train" / wav.name).write_bytes(wav.read_bytes())
    with pytest.raises(InputError, match="no audio files") as err:
        _render(tmp_path / "out", partial, rooms["ring"])
    assert err.value.path == str(partial / CLASS_FOLDERS[0] / "train")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unreadable_wav_is_an_input_error_naming_it(tmp_path: Path, rooms: dict) -> None:
    broken = tmp_path / "broken"
    for folder in CLASS_FOLDERS:
        (broken / folder / "train").mkdir(parents=True)
        (broken / folder / "train" / "clip.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    with pytest.raises(InputError, match="cannot read audio") as err:
        _render(tmp_path / "out", broken, rooms["ring"])
    assert re.fullmatch(re.escape(str(broken)) + r"/\w+/train/clip\.wav", err.value.path)
    assert not any((tmp_path / "out").iterdir())  # no partial output


@pytest.mark.parametrize(("channels", "rate", "field"), [(2, SR, "Data.IR"), (4, 48000, "Data.SamplingRate")])
def test_room_with_wrong_format_is_an_input_error(
    tmp_path: Path, bank: Path, channels: int, rate: int, field: str
) -> None:
    room = _anechoic_room(tmp_path / "bad.sofa", [_spherical(0.0, 0.0, 1.0)], channels=channels, rate=rate)
    with pytest.raises(InputError) as err:
        _render(tmp_path / "out", bank, room)
    assert (err.value.path, err.value.field) == (str(room), field)
