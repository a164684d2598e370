"""Seeded random cases for the parity test of the DCASE2025 stereo SELD metric against the official scorer.

``make_case(seed)`` builds, for several clips, a reference table (integers, as the dataset writes them) and the
text of a prediction CSV that exercises what the official scorer accepts and every quirk it has:

* overlapping sources, up to three of one class at once, absent classes, moving and static sources;
* predictions that miss frames, add false alarms (some past the reference's last frame), confuse classes and
  duplicate tracks;
* azimuth errors at and around the 20-degree threshold, front/back mirrored azimuths, azimuths outside -180..180
  (up to two turns away) and fractional azimuths;
* distances at and around the relative-distance threshold (exactly twice the reference, just above it),
  fractional and negative distances;
* onscreen flags right, wrong, and outside 0/1;
* source ids repeated, negative or 10 and above, and one frame with more than ten tracks of one class;
* clips whose reference has no events, or events only in frame 0 (never scored), a reference without a
  prediction file (skipped), empty and header-only prediction files, other header texts and a seventh column.

``write_case`` writes a case as files: references in ``ref/split/``, predictions in ``pred/``. The parity fixture
``tests/data/dcase2025_parity_official.json`` holds what the official scorer computed on exactly these files; its
``generator`` entry says how it was produced and ``digest`` guards against the generator changing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from seldflow.labels import CSV_COLUMNS, write_labels

PARITY_FIXTURE = Path(__file__).parent / "data" / "dcase2025_parity_official.json"
N_CLASSES = 13
HEADER = ",".join(CSV_COLUMNS)

# A clip's prediction: CSV text, or None for a reference left without a prediction file.
Case = dict[str, tuple[np.ndarray, str | None]]

# Azimuth errors (degrees) at and around the threshold; 20 passes, anything above fails.
AZIMUTH_ERRORS = (0.0, 3.0, 19.5, 20.0, 20.25, 21.0, 35.0, 90.0)
# Predicted / reference distance: 2.0 gives a relative error just under 1 (the scorer adds eps), so it passes.
DISTANCE_FACTORS = (1.0, 0.8, 1.5, 2.0, 2.02, 0.0, -0.05)
SPECIAL_CLIPS = ("no_events", "frame0_only", "no_prediction", "empty_file", "header_only", "crowded")


def make_case(seed: int, n_clips: int = 6) -> Case:
    """``{clip name: (reference rows, prediction CSV text or None)}``: ``n_clips`` random clips and the specials."""
    rng = np.random.default_rng(seed)
    case: Case = {}
    for index in range(n_clips):
        n_frames = int(rng.integers(12, 40))
        reference = _reference(rng, n_frames)
        header = HEADER if index % 3 else "frame,class,track,azimuth,distance,onscreen"
        rows = _prediction(rng, reference, n_frames)
        case[f"fold4_clip{index}_{seed}"] = (reference, _csv(header, rows, extra_column=index == 1))
    for kind in SPECIAL_CLIPS:
        case[f"fold4_{kind}_{seed}"] = _special(rng, kind)
    return case


def write_case(folder: Path, case: Case) -> tuple[Path, Path]:
    """Write references (with seldflow's writer, in split ``split``) and prediction texts; return both folders."""
    ref_dir, pred_dir = folder / "ref", folder / "pred"
    (ref_dir / "split").mkdir(parents=True, exist_ok=True)
    pred_dir.mkdir(parents=True, exist_ok=True)
    for name, (reference, prediction) in case.items():
        write_labels(ref_dir / "split" / f"{name}.csv", reference)
        if prediction is not None:
            (pred_dir / f"{name}.csv").write_text(prediction)
    return ref_dir, pred_dir


def case_digest(folder: Path) -> str:
    """SHA-256 over the written files (names and bytes), so a changed generator cannot pass unnoticed."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.csv")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def fixture() -> dict:
    """The recorded official results."""
    return json.loads(PARITY_FIXTURE.read_text())


def _reference(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Integer reference rows; the last frame always holds an event, so frames 0 .. n_frames - 2 are scored."""
    classes = rng.choice(N_CLASSES, size=int(rng.integers(2, 6)), replace=False)
    rows = []
    for event in range(int(rng.integers(3, 9))):
        cls = int(rng.choice(classes))
        start = int(rng.integers(0, n_frames - 3))
        end = min(n_frames, start + int(rng.integers(3, 25)))
        azimuth, speed = rng.uniform(-180, 180), rng.choice([0.0, rng.uniform(-8, 8)])
        distance = int(rng.integers(50, 600))
        for frame in range(start, end):
            az = round((azimuth + speed * (frame - start) + 180) % 360 - 180)
            onscreen = int(abs(az) <= 50) if rng.random() > 0.1 else int(rng.integers(0, 2))
            rows.append([frame, cls, event % 3, az, distance, onscreen])
    rows.append([n_frames - 1, int(classes[0]), 0, 10, 150, 1])
    return np.array(rows, dtype=np.int64)


def _prediction(rng: np.random.Generator, reference: np.ndarray, n_frames: int) -> list[list[float]]:
    """Prediction rows derived from the reference, then false alarms; sorted by frame, shuffled within a frame."""
    rows: list[list[float]] = []
    for frame, cls, source, az, distance, onscreen in reference.tolist():
        if rng.random() < 0.15:  # missed
            continue
        if rng.random() < 0.05:  # class confusion
            cls = int(rng.integers(0, N_CLASSES))
        rows.append(
            [frame, cls, _source(rng, source), _azimuth(rng, az), _distance(rng, distance), _onscreen(rng, onscreen)]
        )
        if rng.random() < 0.06:  # a duplicated track elsewhere
            rows.append([frame, cls, source, float(rng.uniform(-200, 200)), distance, onscreen])
    for _ in range(int(rng.integers(0, 12))):  # false alarms, some past the reference's end
        frame = int(rng.integers(0, n_frames + 10))
        az, distance = round(float(rng.uniform(-400, 400)), 2), round(float(rng.uniform(-50, 600)), 1)
        rows.append([frame, int(rng.integers(0, N_CLASSES)), 0, az, distance, int(rng.integers(0, 2))])
    order = np.lexsort((rng.random(len(rows)), [row[0] for row in rows]))
    return [rows[i] for i in order]


def _source(rng: np.random.Generator, source: int) -> int:
    return int(rng.choice([0, 12, -1, 3])) if rng.random() < 0.15 else source


def _azimuth(rng: np.random.Generator, reference: int) -> float:
    """A predicted azimuth an exact error away, possibly mirrored front/back and moved whole turns away."""
    azimuth = reference + float(rng.choice(AZIMUTH_ERRORS)) * float(rng.choice([-1.0, 1.0]))
    if rng.random() < 0.2:
        azimuth = 180.0 - azimuth  # the same folded azimuth
    if rng.random() < 0.25:
        azimuth += 360.0 * int(rng.choice([-2, -1, 1, 2]))
    return azimuth


def _distance(rng: np.random.Generator, reference: int) -> float:
    distance = reference * float(rng.choice(DISTANCE_FACTORS))
    return round(distance + float(rng.uniform(-3, 3)), 2) if rng.random() < 0.2 else distance


def _onscreen(rng: np.random.Generator, reference: int) -> int:
    draw = rng.random()
    if draw < 0.05:
        return int(rng.choice([2, -1]))
    return 1 - reference if draw < 0.25 else reference


def _special(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, str | None]:
    """One clip of a special kind (see :data:`SPECIAL_CLIPS`)."""
    if kind == "no_events":  # never scored: its false alarms do not count
        return np.zeros((0, 6), dtype=np.int64), _csv(HEADER, [[3, 2, 0, 40, 100, 0], [70, 5, 0, 10, 100, 1]])
    if kind == "frame0_only":  # scored over range(0): nothing
        return np.array([[0, 4, 0, 30, 200, 1]]), _csv(HEADER, [[0, 7, 0, 30, 200, 1]])
    reference = _reference(rng, 20)
    if kind == "no_prediction":
        return reference, None
    if kind == "empty_file":
        return reference, ""
    if kind == "header_only":
        return reference, HEADER + "\n"
    return reference, _csv(HEADER, _prediction(rng, reference, 20) + _crowd(rng, reference))


def _crowd(rng: np.random.Generator, reference: np.ndarray) -> list[list[float]]:
    """Fourteen tracks of a reference event's class in its frame: more than the scorer's ten slots."""
    frame, cls = int(reference[0, 0]), int(reference[0, 1])
    sources = [0, 0, 1, 12, -1, 5, 5, 9, 2, 3, 4, 6, 8, 7]
    return [
        [frame, cls, source, round(float(rng.uniform(-180, 180)), 1), int(rng.integers(50, 600)), 1]
        for source in sources
    ]


def _csv(header: str, rows: list[list[float]], *, extra_column: bool = False) -> str:
    """Prediction text: integers as integers, other numbers as Python writes them; optionally a confidence column."""
    lines = [header + (",confidence" if extra_column else "")]
    for row in rows:
        values = [_number(value) for value in row]
        lines.append(",".join(values + (["0.9"] if extra_column else [])))
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
