"""STARSS23 adapters: stereo clips drawn like the DCASE2025 stereo data, 5-s FOA/MIC windows, bad input.

The recordings here are plane waves written by hand (noise with the FOA gains of one known direction), and the
metadata encode the absolute frame index in the distance (100 + frame cm), so every expected value (which channel
is louder, the label azimuth, the onscreen flag, where a window starts) follows from geometry and arithmetic.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from seldflow.errors import InputError
from seldflow.formats.dcase2021 import read_events
from seldflow.formats.events import EV_AZIMUTH, EV_ELEVATION, EV_FRAME
from seldflow.labels import N_CLASSES, read_labels
from seldflow.starss import (
    NO_VIDEO_RECORDINGS,
    ClipDraw,
    dcase_rows,
    foa_windows,
    plan_clips,
    read_starss_labels,
    stereo_clips,
)

SR = 24000
HOP = 2400
CLIP = 50 * HOP
NAME = re.compile(r"^(?P<stem>.+)_deg(?P<deg>\d{3})_start(?P<start>\d{4})$")


@dataclass(frozen=True)
class Source:
    """One test recording: a static plane wave at (azimuth, elevation) of class ``cls`` lasting ``seconds``."""

    split: str
    stem: str
    azimuth: float
    elevation: float
    seconds: float
    cls: int = 1
    loud: bool = False


SOURCES = (
    Source("dev-train-sony", "fold3_room22_mix001", 30.0, 0.0, 12.3, cls=1),
    Source("dev-train-tau", "fold3_room4_mix001", -120.0, 20.0, 8.0, cls=6),
    Source("dev-train-tau", "fold3_room4_mix002", 150.0, 0.0, 6.0, cls=8),
    # No video in STARSS23: left out of stereo clips by default.
    Source("dev-train-sony", "fold3_room21_mix001", 0.0, 0.0, 6.0, cls=0),
)


def _foa(source: Source, seed: int) -> np.ndarray:
    """Int16 FOA (ACN W, Y, Z, X, SN3D) of a plane wave: noise times the gains of its direction."""
    n = round(source.seconds * SR)
    rng = np.random.default_rng(seed)
    if source.loud:  # a full-scale square wave in W: any stereo pair W +- Y' peaks above 0.9999
        return np.stack([np.where(rng.random(n) < 0.5, -32767, 32767), *np.zeros((3, n))]).astype(np.int16)
    a, e = np.deg2rad(source.azimuth), np.deg2rad(source.elevation)
    gains = np.array([1.0, np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
    signal = np.clip(rng.standard_normal(n) * 0.1, -0.4, 0.4)
    return np.round(gains[:, None] * signal[None, :] * 32767).astype(np.int16)


def _rows(source: Source) -> list[tuple[int, ...]]:
    """Active in every frame but each 7th; distance 100 + the absolute frame index, source id 2."""
    frames = int(source.seconds * 10 + 0.5)
    return [(f, source.cls, 2, round(source.azimuth), round(source.elevation), 100 + f) for f in range(frames) if f % 7]


def make_tree(root: Path, sources: tuple[Source, ...] = SOURCES, *, kind: str = "foa") -> dict[str, Path]:
    """A STARSS23-format tree ``<kind>_dev/<split>/<stem>.wav`` + ``metadata_dev/<split>/<stem>.csv``."""
    for index, source in enumerate(sources):
        audio = root / f"{kind}_dev" / source.split / f"{source.stem}.wav"
        meta = root / "metadata_dev" / source.split / f"{source.stem}.csv"
        audio.parent.mkdir(parents=True, exist_ok=True)
        meta.parent.mkdir(parents=True, exist_ok=True)
        sf.write(audio, _foa(source, seed=index).T, SR, subtype="PCM_16")
        meta.write_text("".join(",".join(map(str, row)) + "\n" for row in _rows(source)))
    return {"audio": root / f"{kind}_dev", "metadata": root / "metadata_dev"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_tree(tmp_path_factory.mktemp("starss"))


TRAIN = ("dev-train-sony", "dev-train-tau")


def _stereo(tree: dict[str, Path], out: Path, **overrides: Any) -> dict[str, Path]:
    dirs = {"stereo": out / "stereo", "metadata": out / "metadata"}
    args: dict[str, Any] = dict(n_clips=12, seed=5, splits=TRAIN)
    args.update(overrides)
    stereo_clips(tree["audio"], tree["metadata"], dirs["stereo"], dirs["metadata"], **args)
    return dirs


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def _onscreen(azimuth: float, elevation: float) -> int:
    """Inside a 100-degree, 640 x 360 rectilinear frame looking at azimuth 0 (independent of the library)."""
    a, e = np.deg2rad(azimuth), np.deg2rad(elevation)
    if np.cos(a) <= 0:
        return 0
    half = np.tan(np.deg2rad(50.0))
    return int(abs(np.tan(a)) <= half and abs(np.tan(e) / np.cos(a)) <= half * 360 / 640)


def _fold(azimuth: float) -> float:
    wrapped = (azimuth + 180.0) % 360.0 - 180.0
    if wrapped > 90:
        return 180.0 - wrapped
    if wrapped < -90:
        return -180.0 - wrapped
    return wrapped


# --- stereo clips ---------------------------------------------------------------------------------------------


def test_stereo_clips_left_right_labels_and_onscreen(tree: dict[str, Path], tmp_path: Path) -> None:
    dirs = _stereo(tree, tmp_path, n_clips=16)
    by_stem = {s.stem: s for s in SOURCES}
    wavs = sorted(dirs["stereo"].glob("*.wav"))
    assert len(wavs) == 16
    assert sorted(p.stem for p in dirs["metadata"].glob("*.csv")) == [p.stem for p in wavs]
    for path in wavs:
        match = NAME.match(path.stem)
        assert match, path.name
        source, deg, start = by_stem[match["stem"]], int(match["deg"]), int(match["start"])
        assert source.stem not in NO_VIDEO_RECORDINGS
        assert 0 <= start <= int(source.seconds * 10) - 50
        stereo, rate = sf.read(path, dtype="float64", always_2d=True)
        assert rate == SR and stereo.shape == (CLIP, 2)
        assert sf.info(str(path)).subtype == "PCM_16"

        # The stereo pair is W +- the rotated Y of the FOA window, sample for sample.
        foa = _foa(source, seed=SOURCES.index(source))[:, start * HOP : start * HOP + CLIP] / 32768.0
        w, y, x = foa[0], foa[1], foa[3]
        rotated_y = np.sin(np.deg2rad(deg)) * x + np.cos(np.deg2rad(deg)) * y
        np.testing.assert_allclose(stereo[:, 0], w + rotated_y, atol=2e-4)
        np.testing.assert_allclose(stereo[:, 1], w - rotated_y, atol=2e-4)
        side = np.sin(np.deg2rad(source.azimuth + deg))
        if abs(side) > 0.05:
            assert (_rms(stereo[:, 0]) > _rms(stereo[:, 1])) == (side > 0), (path.name, side)

        rows = read_labels(dirs["metadata"] / f"{path.stem}.csv")
        expected_frames = [f - start for f in range(start, start + 50) if f % 7]
        assert rows[:, 0].tolist() == expected_frames
        assert set(rows[:, 1]) == {source.cls} and set(rows[:, 2]) == {2}
        assert rows[:, 4].tolist() == [100 + start + f for f in expected_frames]  # distance unchanged, cm
        assert set(rows[:, 3]) == {round(_fold(source.azimuth + deg))}
        if abs(abs(_fold(source.azimuth + deg)) - 50.0) > 1e-6:  # exactly on the frame edge: either is right
            assert set(rows[:, 5]) == {_onscreen(source.azimuth + deg, source.elevation)}


def test_stereo_labels_onscreen_cases() -> None:
    def one(azimuth: int, elevation: int, deg: int) -> tuple[int, int]:
        rows = np.array([[3, 1, 0, azimuth, elevation, 250]], dtype=np.int64)
        out = dcase_rows(rows, deg=deg, fold=True, field_of_view_deg=100.0)
        assert out[0, [0, 1, 2, 4]].tolist() == [3, 1, 0, 250]
        return int(out[0, 3]), int(out[0, 5])

    assert one(-30, 0, 30) == (0, 1)  # turned to straight ahead
    assert one(150, 0, 0) == (30, 0)  # behind: folds to 30 but stays offscreen
    assert one(100, 0, 100) == (-20, 0)  # 200 wraps to -160, behind
    assert one(-60, 0, 20) == (-40, 1)
    assert one(0, 40, 0) == (0, 0)  # above the 360-pixel frame (about +-33.8 degrees on axis)
    assert one(0, 30, 0) == (0, 1)
    assert one(180, 0, 359) == (1, 0)  # 539 wraps to 179, folds to 1, behind


def test_stereo_clips_are_reproducible_and_seeded(tree: dict[str, Path], tmp_path: Path) -> None:
    first = _stereo(tree, tmp_path / "a")
    again = _stereo(tree, tmp_path / "b")
    other = _stereo(tree, tmp_path / "c", seed=6)
    for kind in ("stereo", "metadata"):
        assert _digests(first[kind]) == _digests(again[kind])
    assert set(_digests(first["stereo"]).items()) != set(_digests(other["stereo"]).items())
    assert sorted(p.name for p in first["stereo"].iterdir()) != sorted(p.name for p in other["stereo"].iterdir())


def test_shards_render_the_whole_plans_files(tree: dict[str, Path], tmp_path: Path) -> None:
    whole = _stereo(tree, tmp_path / "whole", n_clips=9)
    merged: dict[str, dict[str, str]] = {"stereo": {}, "metadata": {}}
    for first, count in ((0, 4), (4, 3), (7, 2)):
        shard = _stereo(tree, tmp_path / f"shard{first}", n_clips=count, first_clip=first, total_clips=9)
        for kind in merged:
            digests = _digests(shard[kind])
            assert len(digests) == count
            merged[kind].update(digests)
    for kind in merged:
        assert merged[kind] == _digests(whole[kind])


def test_exclude_and_splits(tree: dict[str, Path], tmp_path: Path) -> None:
    dirs = _stereo(tree, tmp_path / "all", n_clips=40, exclude=())
    stems = {NAME.match(p.stem)["stem"] for p in dirs["stereo"].glob("*.wav")}
    assert "fold3_room21_mix001" in stems  # drawn once the exclusion is lifted
    tau = _stereo(tree, tmp_path / "tau", n_clips=10, splits=("dev-train-tau",))
    assert {NAME.match(p.stem)["stem"] for p in tau["stereo"].glob("*.wav")} <= {
        "fold3_room4_mix001",
        "fold3_room4_mix002",
    }


def test_plan_is_distinct_length_weighted_and_prefix_stable() -> None:
    plan = plan_clips([100, 300, 20], 4000, seed=1)
    assert len({(d.recording, d.start, d.deg) for d in plan}) == 4000
    assert all(d.recording in (0, 1) for d in plan)  # 20 frames: shorter than a clip, never drawn
    assert all(0 <= d.start <= (100, 300)[d.recording] - 50 and 0 <= d.deg <= 359 for d in plan)
    share = np.mean([d.recording == 0 for d in plan])
    assert abs(share - 0.25) < 0.03  # weights 100 : 300
    assert plan_clips([100, 300, 20], 5, seed=1) == plan[:5]
    assert plan_clips([100, 300, 20], 5, seed=2) != plan[:5]
    # Two starts x 360 angles = 720 triples: a full plan uses each exactly once.
    full = plan_clips([51], 720, seed=3)
    assert {(d.start, d.deg) for d in full} == {(s, g) for s in (0, 1) for g in range(360)}
    with pytest.raises(ValueError, match="distinct"):
        plan_clips([51], 721, seed=3)
    assert isinstance(full[0], ClipDraw)


def test_loud_clips_are_redrawn_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sources = (
        Source("dev-train-tau", "fold3_room4_mix001", 40.0, 0.0, 6.0),
        Source("dev-train-tau", "fold3_room4_mix002", 0.0, 0.0, 6.0, loud=True),
    )
    tree = make_tree(tmp_path / "data", sources)
    plan = plan_clips([60, 60], 10, seed=2)
    loud = [k for k, d in enumerate(plan) if d.recording == 1]
    assert len(loud) >= 3, "the seed should send several draws to the loud recording"
    with caplog.at_level(logging.WARNING, logger="seldflow.starss"):
        whole = _stereo(tree, tmp_path / "whole", n_clips=10, seed=2, splits=("dev-train-tau",))
    redrawn = [r.getMessage() for r in caplog.records if "redrawn" in r.getMessage()]
    assert {int(re.match(r"clip (\d+):", m)[1]) for m in redrawn} == set(loud)
    names = [p.stem for p in whole["stereo"].glob("*.wav")]
    assert len(names) == 10 and all(NAME.match(n)["stem"] == "fold3_room4_mix001" for n in names)
    assert all(float(np.max(np.abs(sf.read(p)[0]))) <= 0.9999 for p in whole["stereo"].glob("*.wav"))
    # Redraws come from each clip's own stream: a shard holding a redrawn clip renders the same file.
    k = loud[0]
    shard = _stereo(
        tree, tmp_path / "shard", n_clips=1, first_clip=k, total_clips=10, seed=2, splits=("dev-train-tau",)
    )
    (name, digest), *_ = _digests(shard["stereo"]).items()
    assert _digests(whole["stereo"])[name] == digest


# --- windows --------------------------------------------------------------------------------------------------


def _windows(tree: dict[str, Path], out: Path, **overrides: Any) -> dict[str, Path]:
    dirs = {"audio": out / "audio", "metadata": out / "metadata"}
    args: dict[str, Any] = dict(splits=TRAIN)
    args.update(overrides)
    foa_windows(tree["audio"], tree["metadata"], dirs["audio"], dirs["metadata"], **args)
    return dirs


def test_windows_cut_pad_and_relabel(tree: dict[str, Path], tmp_path: Path) -> None:
    dirs = _windows(tree, tmp_path)
    expected = {
        "fold3_room22_mix001": [0, 50, 100],  # 12.3 s: two full windows and a zero-padded 2.3-s one
        "fold3_room4_mix001": [0, 50],  # 8 s
        "fold3_room4_mix002": [0, 50],  # 6 s
        "fold3_room21_mix001": [0, 50],  # windows keep the recordings without video
    }
    names = sorted(f"{stem}_start{start:04d}" for stem, starts in expected.items() for start in starts)
    assert sorted(p.stem for p in dirs["audio"].glob("*.wav")) == names
    assert sorted(p.stem for p in dirs["metadata"].glob("*.csv")) == names
    for source in SOURCES:
        original = _foa(source, seed=SOURCES.index(source))
        n = original.shape[1]
        for start in expected[source.stem]:
            stem = f"{source.stem}_start{start:04d}"
            audio, rate = sf.read(dirs["audio"] / f"{stem}.wav", dtype="int16", always_2d=True)
            assert rate == SR and audio.shape == (CLIP, 4)
            begin = start * HOP
            kept = min(CLIP, n - begin)
            np.testing.assert_array_equal(audio[:kept].T, original[:, begin : begin + kept])  # bit-exact copy
            assert not audio[kept:].any()  # zero padding after the recording's end
            rows = read_labels(dirs["metadata"] / f"{stem}.csv")
            frames = [f - start for f in range(start, min(start + 50, int(source.seconds * 10 + 0.5))) if f % 7]
            assert rows[:, 0].tolist() == frames
            assert rows[:, 4].tolist() == [100 + start + f for f in frames]
            assert set(rows[:, 3]) == {round(source.azimuth)}  # full azimuth: 150 and -120 are not folded
            assert set(rows[:, 5]) == {_onscreen(source.azimuth, source.elevation)}
    last = read_labels(dirs["metadata"] / "fold3_room22_mix001_start0100.csv")
    assert last[-1, 0] == 22  # frame 122 of the recording: labels of the padded window are kept


def test_windows_in_the_dcase2021_format_keep_elevation(tree: dict[str, Path], tmp_path: Path) -> None:
    """3-D labels (headerless frame,class,track,azimuth,elevation) for the FOA/MIC SELD methods."""
    dirs = _windows(tree, tmp_path, label_format="dcase2021")
    for source in SOURCES:
        path = dirs["metadata"] / f"{source.stem}_start0050.csv"
        assert not path.read_text().startswith("frame")
        events = read_events(path, n_classes=N_CLASSES)
        assert set(events[:, EV_AZIMUTH]) == {round(source.azimuth)}
        assert set(events[:, EV_ELEVATION]) == {round(source.elevation)}
        stereo_view = read_labels(_windows(tree, tmp_path / "stereo")["metadata"] / path.name)
        np.testing.assert_array_equal(events[:, EV_FRAME], stereo_view[:, 0])  # same frames as the DCASE2025 view


def test_windows_read_mic_recordings_and_tolerate_a_header(tmp_path: Path) -> None:
    sources = (Source("dev-test-tau", "fold4_room2_mix001", -45.0, 10.0, 5.0),)
    tree = make_tree(tmp_path / "data", sources, kind="mic")
    csv_path = tree["metadata"] / "dev-test-tau" / "fold4_room2_mix001.csv"
    csv_path.write_text("frame,class,source,azimuth,elevation,distance\n" + csv_path.read_text())
    dirs = _windows(tree, tmp_path / "out", splits=("dev-test-tau",), channels=4)
    assert [p.name for p in dirs["audio"].iterdir()] == ["fold4_room2_mix001_start0000.wav"]
    assert len(read_labels(dirs["metadata"] / "fold4_room2_mix001_start0000.csv")) == len(_rows(sources[0]))
    assert read_starss_labels(csv_path).shape == (len(_rows(sources[0])), 6)


# --- bad input ------------------------------------------------------------------------------------------------

ONE = (Source("dev-train-tau", "fold3_room4_mix001", 20.0, 0.0, 6.0),)
WAV = Path("foa_dev/dev-train-tau/fold3_room4_mix001.wav")
CSV = Path("metadata_dev/dev-train-tau/fold3_room4_mix001.csv")


def _rewrite_wav(root: Path, channels: int = 4, rate: int = SR) -> None:
    sf.write(root / WAV, np.zeros((6 * rate, channels), dtype=np.int16), rate, subtype="PCM_16")


def _truncate(root: Path) -> None:
    data = (root / WAV).read_bytes()
    (root / WAV).write_bytes(data[: len(data) - 1000])


def _edit_csv(line: int, text: str) -> Any:
    def edit(root: Path) -> None:
        lines = (root / CSV).read_text().splitlines()
        lines[line - 1] = text
        (root / CSV).write_text("\n".join(lines) + "\n")

    return edit


BAD_INPUTS = {
    "csv missing": (lambda root: (root / CSV).unlink(), WAV, None, None, "no metadata file"),
    "wav missing": (lambda root: (root / WAV).unlink(), CSV, None, None, "has no recording"),
    "channels": (lambda root: _rewrite_wav(root, channels=2), WAV, None, "channels", "2 channels"),
    "sample rate": (lambda root: _rewrite_wav(root, rate=16000), WAV, None, "sample_rate", "16000 Hz"),
    "truncated": (_truncate, WAV, None, None, "truncated"),
    "not a number": (_edit_csv(3, "3,6,2,left,0,103"), CSV, 3, "azimuth", "not a number"),
    "fraction": (_edit_csv(2, "2,6,2.5,20,0,102"), CSV, 2, "source", "integer"),
    "class": (_edit_csv(4, "4,13,2,20,0,104"), CSV, 4, "class", "class index 13"),
    "elevation": (_edit_csv(5, "5,6,2,20,91,105"), CSV, 5, "elevation", "-90..90"),
    "azimuth": (_edit_csv(5, "5,6,2,181,0,105"), CSV, 5, "azimuth", "-180..180"),
    "distance": (_edit_csv(6, "6,6,2,20,0,-1"), CSV, 6, "distance", "negative distance"),
    "columns": (_edit_csv(2, "2,6,2,20,0"), CSV, 2, None, "expected 6 columns"),
    "header": (_edit_csv(1, "time,label,id,az,el,dist"), CSV, 1, "frame", "not a number"),
}


@pytest.mark.parametrize("function", ["stereo", "windows"])
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_the_file_and_writes_nothing(tmp_path: Path, case: str, function: str) -> None:
    spoil, path, row, field, message = BAD_INPUTS[case]
    root = tmp_path / "data"
    tree = make_tree(root, ONE)
    spoil(root)
    out = tmp_path / "out"
    previous = out / "first" / "kept.txt"  # the output of an earlier run survives a failed one
    previous.parent.mkdir(parents=True)
    previous.write_text("earlier run")
    folders = (out / "first", out / "second")
    with pytest.raises(InputError, match=message) as err:
        if function == "stereo":
            stereo_clips(tree["audio"], tree["metadata"], *folders, n_clips=2, seed=1, splits=("dev-train-tau",))
        else:
            foa_windows(tree["audio"], tree["metadata"], *folders, splits=("dev-train-tau",))
    assert Path(err.value.path) == root / path
    assert (err.value.row, err.value.field) == (row, field)
    assert sorted(p.name for p in out.iterdir()) == ["first"]
    assert [p.name for p in (out / "first").iterdir()] == ["kept.txt"]


def test_label_beyond_the_padded_recording_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    tree = make_tree(root, ONE)
    with (root / CSV).open("a") as fh:
        fh.write("100,6,2,20,0,200\n")  # 6 s pad to 10 s: frames 0..99
    rows = len(_rows(ONE[0])) + 1
    with pytest.raises(InputError, match="beyond") as err:
        foa_windows(tree["audio"], tree["metadata"], tmp_path / "a", tmp_path / "m", splits=("dev-train-tau",))
    assert (Path(err.value.path), err.value.row, err.value.field) == (root / CSV, rows, "frame")
    assert not (tmp_path / "a").exists() and not (tmp_path / "m").exists()


def test_missing_folders_and_shard_bounds(tree: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder not found") as err:
        _stereo(tree, tmp_path, splits=("dev-train-nowhere",))
    assert Path(err.value.path) == tree["audio"] / "dev-train-nowhere"
    with pytest.raises(ValueError, match="plan of 5"):
        _stereo(tree, tmp_path, n_clips=3, first_clip=4, total_clips=5)
    assert not any(tmp_path.iterdir())
