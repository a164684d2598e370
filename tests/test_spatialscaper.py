"""SpatialScaper backend: label conversion (frame shift, units, rotation, folding, onscreen), clipping, errors.

The conversion functions always run on hand-computed cases. The end-to-end tests render with the real package and
run only where ``spatialscaper`` imports.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import seldflow.synthesize.spatialscaper as adapter
from seldflow.errors import InputError, SeldflowError
from seldflow.labels import fold_azimuth, read_labels
from seldflow.synthesize.sofa import write_sofa
from seldflow.synthesize.sources import make_source_bank
from seldflow.synthesize.spatialscaper import (
    SpatialScaperMissingError,
    check_clipping,
    read_spatialscaper_labels,
    render_split_spatialscaper,
    to_dcase2025_rows,
)

SR = 24000
HOP = 2400


def _labels(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return path


def _row(frame: int, cls: int, source: int, azimuth: float, elevation: float, distance: float) -> list[float]:
    return [frame, cls, source, azimuth, elevation, distance]


# --- reading ---------------------------------------------------------------------------------------------------


def test_read_parses_headerless_rows_with_metres(tmp_path: Path) -> None:
    rows = read_spatialscaper_labels(_labels(tmp_path, "12,10,1,-93,6,2.514\n13,10,1,-93,6,2.514\n\n"))
    np.testing.assert_array_equal(rows, [[12, 10, 1, -93, 6, 2.514], [13, 10, 1, -93, 6, 2.514]])
    assert read_spatialscaper_labels(_labels(tmp_path, "")).shape == (0, 6)


@pytest.mark.parametrize(
    ("text", "row", "field", "message"),
    [
        ("frame,class,source,azimuth,distance,onscreen\n", 1, "frame", "no header"),
        ("1,2,0,30,0\n", 1, None, "expected 6 columns"),
        ("1,2,0,30,0,1.5\n2,2,0,30.5,0,1.5\n", 2, "azimuth", "expected an integer"),
        ("1,2,0,30,0,far\n", 1, "distance", "not a number"),
        ("1,2,0,30,0,nan\n", 1, "distance", "not a finite number"),
        ("1,13,0,30,0,1.5\n", 1, "class", "unknown class"),
        ("-1,2,0,30,0,1.5\n", 1, "frame", "negative frame"),
        ("1,2,0,181,0,1.5\n", 1, "azimuth", "out of range"),
        ("1,2,0,30,91,1.5\n", 1, "elevation", "out of range"),
        ("1,2,0,30,0,-0.5\n", 1, "distance", "negative distance"),
    ],
)
def test_read_rejects_malformed_rows(tmp_path: Path, text: str, row: int, field: str | None, message: str) -> None:
    path = _labels(tmp_path, text)
    with pytest.raises(InputError, match=message) as info:
        read_spatialscaper_labels(path)
    assert (info.value.path, info.value.row, info.value.field) == (str(path), row, field)


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_spatialscaper_labels(tmp_path / "absent.csv")


# --- conversion ------------------------------------------------------------------------------------------------


def test_static_event_gains_the_frame_spatialscaper_drops_and_distance_in_cm() -> None:
    # SpatialScaper wrote frames 3..5 for an event whose audio touches frames 3..6.
    rows = np.array([_row(f, 2, 0, 30, 0, 1.514) for f in (3, 4, 5)])
    out = to_dcase2025_rows(rows, deg=0, n_frames=20)
    np.testing.assert_array_equal(out, [[f, 2, 0, 30, 151, 1] for f in (3, 4, 5, 6)])


def test_distance_metres_to_rounded_centimetres() -> None:
    rows = np.array([_row(0, 0, 0, 0, 0, 2.516), _row(0, 1, 1, 0, 0, 0.994), _row(0, 2, 2, 0, 0, 1.0)])
    out = to_dcase2025_rows(rows, deg=0, n_frames=5)
    assert {int(r[2]): int(r[4]) for r in out} == {0: 252, 1: 99, 2: 100}


def test_moving_event_positions_move_to_frame_middles() -> None:
    # Row at frame 5 + i holds the position 100 ms * (i + 1) after the onset, the boundary of frames 5 + i and
    # 6 + i. Frame middles are the means of their boundaries; the dropped onset boundary repeats the first one and
    # the end boundary of the restored last frame repeats the last one.
    rows = np.array([_row(5 + i, 8, 0, az, 0, 1.0) for i, az in enumerate((0, 10, 20))])
    out = to_dcase2025_rows(rows, deg=0, n_frames=20)
    np.testing.assert_array_equal(out[:, 0], [5, 6, 7, 8])
    np.testing.assert_array_equal(out[:, 3], [0, 5, 15, 20])
    # The mean of two unit vectors 10 degrees apart has length cos(5 deg) = 0.9962: 100 cm after rounding.
    np.testing.assert_array_equal(out[:, 4], [100, 100, 100, 100])


def test_moving_event_distance_is_the_chord_midpoint() -> None:
    rows = np.array([_row(i, 8, 0, az, 0, 2.0) for i, az in enumerate((0, 60))])
    out = to_dcase2025_rows(rows, deg=0, n_frames=20)
    np.testing.assert_array_equal(out[:, 3], [0, 30, 60])
    np.testing.assert_array_equal(out[:, 4], [200, round(200 * np.cos(np.deg2rad(30))), 200])


@pytest.mark.parametrize(
    ("azimuth", "deg", "folded", "onscreen"),
    [
        (30, 0, 30, 1),  # inside the 100-degree camera
        (10, 20, 30, 1),
        (30, 100, 50, 0),  # 130 degrees: behind, folds to 50
        (-60, 300, -60, 0),  # 240 = -120 degrees: behind, folds to -60
        (170, 200, 10, 1),  # 370 = 10 degrees
        (0, 55, 55, 0),  # just outside the half field of view (50 degrees)
        (-90, 90, 0, 1),
        (0, 180, 0, 0),  # straight behind folds to straight ahead
    ],
)
def test_rotation_folding_and_onscreen(azimuth: int, deg: int, folded: int, onscreen: int) -> None:
    rows = np.array([_row(0, 0, 0, azimuth, 0, 1.0)])
    out = to_dcase2025_rows(rows, deg=deg, n_frames=5)
    assert out[0, 3] == folded
    assert out[0, 3] == np.rint(fold_azimuth(azimuth + deg))
    np.testing.assert_array_equal(out[:, 5], onscreen)


def test_onscreen_uses_elevation() -> None:
    # The 640 x 360 frame spans tan(50 deg) * 360 / 640 = 0.670 vertically: 20 degrees (0.364) is inside, 40
    # degrees (0.839) is not.
    rows = np.array([_row(0, 0, 0, 0, 20, 1.0), _row(0, 1, 1, 0, 40, 1.0), _row(0, 2, 2, 0, -40, 1.0)])
    out = to_dcase2025_rows(rows, deg=0, n_frames=5)
    assert {int(r[2]): int(r[5]) for r in out} == {0: 1, 1: 0, 2: 0}


def test_several_sources_keep_ids_and_classes() -> None:
    rows = np.array([_row(0, 4, 0, 10, 0, 1.0), _row(2, 11, 1, -20, 0, 2.0), _row(1, 4, 0, 10, 0, 1.0)])
    out = to_dcase2025_rows(rows, deg=0, n_frames=10)
    assert sorted(map(tuple, out[:, :4].tolist())) == [
        (0, 4, 0, 10),
        (1, 4, 0, 10),
        (2, 4, 0, 10),
        (2, 11, 1, -20),
        (3, 11, 1, -20),
    ]


def test_restored_last_frame_is_clipped_at_the_clip_end() -> None:
    rows = np.array([_row(f, 3, 0, 45, 0, 1.0) for f in (17, 18, 19)])
    out = to_dcase2025_rows(rows, deg=0, n_frames=20)
    np.testing.assert_array_equal(out[:, 0], [17, 18, 19])


def test_empty_labels() -> None:
    assert to_dcase2025_rows(np.zeros((0, 6)), deg=10, n_frames=20).shape == (0, 6)


@pytest.mark.parametrize(
    ("rows", "field", "message"),
    [
        ([_row(20, 0, 0, 0, 0, 1.0)], "frame", "out of range 0..19"),
        ([_row(3, 0, 0, 0, 0, 1.0), _row(4, 1, 0, 0, 0, 1.0)], "class", "changes class"),
        ([_row(3, 0, 0, 0, 0, 1.0), _row(3, 0, 0, 0, 0, 1.0)], "frame", "repeats frame 3"),
        ([_row(3, 0, 0, 0, 0, 1.0), _row(5, 0, 0, 0, 0, 1.0)], "frame", "skips to frame 5"),
    ],
)
def test_conversion_rejects_inconsistent_rows(rows: list[list[float]], field: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        to_dcase2025_rows(np.array(rows), deg=0, n_frames=20, path="clip.csv")
    assert info.value.path == "clip.csv"
    assert info.value.field == field


# --- clipping --------------------------------------------------------------------------------------------------


def test_check_clipping_accepts_audio_below_full_scale(tmp_path: Path) -> None:
    audio = np.zeros((4, 1000), dtype=np.float32)
    audio[2, 10] = 32766 / 32768
    audio[1, 11] = -32767 / 32768
    check_clipping(audio, tmp_path / "a.wav")
    check_clipping((audio * 32768).astype(np.int16), tmp_path / "a.wav")


def test_check_clipping_detects_saturated_16_bit_samples(tmp_path: Path) -> None:
    # Write floats beyond full scale as 16-bit PCM (SpatialScaper's way): libsndfile saturates them.
    audio = np.zeros((200, 2))
    audio[50:53, 1] = 1.4
    audio[120, 0] = -2.0
    path = tmp_path / "clipped.wav"
    sf.write(path, audio, SR)
    as_float = sf.read(path, always_2d=True)[0].T
    with pytest.raises(InputError, match=r"clipped: 4 samples .*channel 0 from sample 120.*longest run 3") as info:
        check_clipping(as_float, path)
    assert info.value.path == str(path)
    with pytest.raises(InputError, match="clipped"):
        check_clipping(sf.read(path, dtype="int16", always_2d=True)[0].T, path)
    check_clipping(as_float, path, min_run=4)  # no run of four
    with pytest.raises(InputError, match="longest run 3"):
        check_clipping(as_float, path, min_run=3)


# --- the renderer without SpatialScaper ------------------------------------------------------------------------


def _render_args(tmp_path: Path, bank: Path, room: Path, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        rooms=[room],
        room_ids=[7],
        bank_dir=bank,
        source_split="train",
        stereo_dir=tmp_path / "stereo",
        foa_dir=tmp_path / "foa",
        metadata_dir=tmp_path / "metadata",
        n_clips=2,
        fold=4,
        seed=11,
        clip_seconds=2.0,
    )
    args.update(overrides)
    return args


def test_missing_package_names_the_config_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spatialscaper", None)  # makes `import spatialscaper` fail
    with pytest.raises(SpatialScaperMissingError, match=r"synthesis\.backend") as info:
        render_split_spatialscaper(**_render_args(tmp_path, tmp_path / "bank", tmp_path / "room.sofa"))
    assert isinstance(info.value, SeldflowError)
    assert "pip install" in str(info.value)
    assert not (tmp_path / "stereo").exists()


def test_rejects_clips_without_events(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one event"):
        render_split_spatialscaper(**_render_args(tmp_path, tmp_path, tmp_path, events_per_clip=(0, 2)))


# --- end to end with the real package --------------------------------------------------------------------------


def _spherical(azimuth_deg: float, elevation_deg: float, distance: float) -> np.ndarray:
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny FSD50K-like bank and an anechoic FOA room (one undelayed impulse per position, ACN/SN3D gains)."""
    pytest.importorskip("spatialscaper")
    root = tmp_path_factory.mktemp("spatialscaper")
    make_source_bank(root / "bank", clips_per_class={"train": 1}, min_seconds=0.3, max_seconds=1.2, seed=3)
    positions = [_spherical(az, el, d) for az in range(0, 360, 30) for el in (-20, 0, 20) for d in (1.0, 2.0)]
    irs = np.zeros((len(positions), 4, 16), dtype=np.float32)
    for m, position in enumerate(positions):
        u = position / np.linalg.norm(position)
        irs[m, :, 0] = [1.0, u[1], u[2], u[0]]
    write_sofa(root / "room.sofa", irs, np.asarray(positions), SR, room_name="anechoic")
    return root / "bank", root / "room.sofa"


def _outputs(out: Path) -> dict[str, list[str]]:
    return {name: sorted(p.name for p in (out / name).iterdir()) for name in ("stereo", "foa", "metadata")}


def test_end_to_end_matches_the_builtin_layout(tmp_path: Path, scene: tuple[Path, Path]) -> None:
    bank, room = scene
    random.seed(5)
    np.random.seed(5)
    before = (random.random(), np.random.random())
    random.seed(5)
    np.random.seed(5)
    render_split_spatialscaper(**_render_args(tmp_path, bank, room))
    assert (random.random(), np.random.random()) == before  # global generators restored

    files = _outputs(tmp_path)
    stems = [Path(name).stem for name in files["stereo"]]
    assert [Path(name).stem for name in files["foa"]] == stems
    assert files["metadata"] == [f"{stem}.csv" for stem in stems]
    assert [re.fullmatch(r"fold4_room7_mix(\d{3})_deg(\d{3})_start0000", s).group(1) for s in stems] == ["001", "002"]
    for stem in stems:
        deg = int(stem[-13:-10])
        assert 0 <= deg < 360
        stereo, rate = sf.read(tmp_path / "stereo" / f"{stem}.wav", always_2d=True)
        foa, foa_rate = sf.read(tmp_path / "foa" / f"{stem}.wav", always_2d=True)
        assert (rate, foa_rate, stereo.shape, foa.shape) == (SR, SR, (2 * SR, 2), (2 * SR, 4))
        assert sf.info(tmp_path / "stereo" / f"{stem}.wav").subtype == "PCM_16"
        assert max(np.abs(stereo).max(), np.abs(foa).max()) == pytest.approx(0.9, abs=1e-4)
        w, y = foa[:, 0], foa[:, 1]
        np.testing.assert_allclose(stereo, np.stack([w + y, w - y], axis=1), atol=2e-4)  # stereo from the FOA
        text = (tmp_path / "metadata" / f"{stem}.csv").read_text()
        assert text.startswith("frame,class,source,azimuth,distance,onscreen\n")
        rows = read_labels(tmp_path / "metadata" / f"{stem}.csv", n_frames=20)  # validates every field
        assert len(rows) > 0
        assert np.all(np.abs(rows[:, 3]) <= 90)  # folded
        assert np.all((rows[:, 4] >= 90) & (rows[:, 4] <= 200))  # grid distances 1 and 2 m (chords for moving)
        assert np.bincount(rows[:, 0]).max() <= 3

    # Shards: clip 2 alone is the same clip, byte for byte.
    shard = tmp_path / "shard"
    render_split_spatialscaper(
        **_render_args(
            shard,
            bank,
            room,
            first_clip=1,
            n_clips=1,
            stereo_dir=shard / "stereo",
            foa_dir=shard / "foa",
            metadata_dir=shard / "metadata",
        )
    )
    assert _outputs(shard)["stereo"] == files["stereo"][1:]
    for name in ("stereo", "foa", "metadata"):
        second = files[name][1]
        assert (shard / name / second).read_bytes() == (tmp_path / name / second).read_bytes()


def test_end_to_end_static_direction_and_activity(tmp_path: Path, scene: tuple[Path, Path]) -> None:
    """Labels agree with the rendered audio: direction of the rotated FOA, and no event sound outside them."""
    bank, room = scene
    render_split_spatialscaper(
        **_render_args(tmp_path, bank, room, n_clips=4, events_per_clip=(1, 1), moving_probability=0.0, snr_db=(40, 40))
    )
    for wav in sorted((tmp_path / "foa").glob("*.wav")):
        w, y, _, x = sf.read(wav, always_2d=True)[0].T
        rows = read_labels(tmp_path / "metadata" / f"{wav.stem}.csv", n_frames=20)
        assert len(np.unique(rows[:, 3])) == 1 and len(np.unique(rows[:, 2])) == 1
        energy = np.mean(w.reshape(20, HOP) ** 2, axis=1)
        noise = np.median(np.sort(energy)[:5])
        loud = (energy > 100 * noise).repeat(HOP)
        direction = np.degrees(np.arctan2(np.dot(w[loud], y[loud]), np.dot(w[loud], x[loud])))
        assert float(fold_azimuth(direction)) == pytest.approx(rows[0, 3], abs=1.5)
        outside = np.setdiff1d(np.flatnonzero(energy > 20 * noise), rows[:, 0])
        assert outside.size == 0, f"{wav.stem}: event sound in unlabelled frames {outside}"


def test_end_to_end_clipped_render_is_repeated_lower_with_the_same_draws(
    tmp_path: Path, scene: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bank, room = scene
    render_split_spatialscaper(**_render_args(tmp_path / "normal", bank, room, n_clips=1))
    # Events at full scale in mean absolute amplitude always clip; the retry 60 dB lower does not.
    monkeypatch.setattr(adapter, "EVENT_LEVEL_DB", 0.0)
    monkeypatch.setattr(adapter, "CLIP_RETRY_DB", 60.0)
    render_split_spatialscaper(**_render_args(tmp_path / "retried", bank, room, n_clips=1))
    (normal,) = (tmp_path / "normal" / "metadata").iterdir()
    (retried,) = (tmp_path / "retried" / "metadata").iterdir()
    assert retried.name == normal.name
    assert retried.read_bytes() == normal.read_bytes()
    a = sf.read(tmp_path / "normal" / "foa" / f"{normal.stem}.wav")[0]
    b = sf.read(tmp_path / "retried" / "foa" / f"{normal.stem}.wav")[0]
    np.testing.assert_allclose(a, b, atol=2e-3)  # the same scene, quantised at another level


def test_end_to_end_clipping_that_persists_is_an_error(
    tmp_path: Path, scene: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bank, room = scene
    monkeypatch.setattr(adapter, "EVENT_LEVEL_DB", 40.0)
    monkeypatch.setattr(adapter, "CLIP_RETRY_DB", 1.0)
    with pytest.raises(
        InputError, match=r"fold4_room7_mix001_deg\d{3}_start0000: field 'audio'.*clips even 2 dB lower"
    ):
        render_split_spatialscaper(**_render_args(tmp_path, bank, room, n_clips=1))
    assert not (tmp_path / "stereo").exists() and not (tmp_path / "metadata").exists()
