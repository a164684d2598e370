"""S5 cleaning stage: added source banks (the Task 4 baseline's data-addition step) cleaned into class folders.

The baseline admits extra target and interferer clips (FSD50K, EARS, Semantic Hearing backgrounds) only after
these checks, in this order, all at the clip's own sample rate:

1. a clip whose peak is below the amplitude threshold (0.02) is dropped (``low_amplitude``);
2. a clip shorter than the minimum length (0.1 s) is dropped (``too_short``);
3. exact zeros are trimmed from both ends; a clip then shorter than the minimum is dropped
   (``too_short_after_trim``);
4. windows of 10 s, shifted by 0.1 s from the start while they fit inside the trimmed clip, are scanned; a clip
   with any window whose peak is below the threshold is dropped (``low_amplitude_segment``). A clip shorter
   than one window has no window and passes this check;
5. a kept clip is resampled to the target rate (32 kHz) and written as a mono 16-bit WAV.

Multichannel input is averaged to mono first (the official loader's default downmix). Resampling uses a
polyphase filter (scipy) where the official script uses librosa's default, so kept clips match it in content
but not sample for sample. Should resampling push the peak past full scale, the clip is scaled to a peak of 1
rather than clipped: the generator peak-normalises every clip, so its level carries no information.

As a workflow stage (rule ``s5_cleaning``, :func:`run_cleaning`), each bank listed under ``s5.added_banks`` is
read through a folder adapter (:data:`ADDED_LAYOUTS`: ``single_class`` for EARS-like trees, ``class_folders`` for
Semantic Hearing / FSD50K-style ``<class>/*.wav``), cleaned at the generator's sample rate into
``<out>/<class>/<n>_<stem>.wav`` (numbered, as EARS repeats file names across speakers), with a CSV of every
source file's outcome beside it. The generator joins that tree to the targets or interferers of the splits the
entry lists (:func:`added_bank_folders`, :func:`seldflow.s5.bank.with_added`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy import signal
from scipy.ndimage import maximum_filter1d

from seldflow.errors import ConfigError, InputError
from seldflow.io import atomic_dir, atomic_file
from seldflow.s5.bank import ROLE_TARGET, scan_class_folders, scan_single_class
from seldflow.s5.generator import settings_from_config
from seldflow.s5.vocabulary import LABELS

KEPT = "kept"
LOW_AMPLITUDE = "low_amplitude"
TOO_SHORT = "too_short"
TOO_SHORT_AFTER_TRIM = "too_short_after_trim"
LOW_AMPLITUDE_SEGMENT = "low_amplitude_segment"
_AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg"})


@dataclass(frozen=True)
class CleaningSettings:
    """The baseline's cleaning parameters (``add_data.sh``)."""

    target_rate: int = 32000
    amp_threshold: float = 0.02
    min_length: float = 0.1  # seconds
    segment: float = 10.0  # seconds, the low-amplitude window
    shift: float = 0.1  # seconds between windows


@dataclass(frozen=True)
class CleanedClip:
    """Outcome for one clip: ``status`` is :data:`KEPT` or the reason it was dropped; ``audio`` only when kept."""

    status: str
    audio: np.ndarray | None  # float64 mono at the target rate


def clean_clip(audio: np.ndarray, sample_rate: int, settings: CleaningSettings = CleaningSettings()) -> CleanedClip:
    """Apply the checks of the module docstring to one clip (``[N]`` mono or ``[C, N]``)."""
    mono = np.asarray(audio, dtype=np.float64)
    if mono.ndim == 2:
        mono = mono.mean(axis=0)
    if mono.size == 0 or np.max(np.abs(mono)) < settings.amp_threshold:
        return CleanedClip(LOW_AMPLITUDE, None)
    if mono.size < settings.min_length * sample_rate:
        return CleanedClip(TOO_SHORT, None)
    mono = np.trim_zeros(mono)
    if mono.size < int(settings.min_length * sample_rate):
        return CleanedClip(TOO_SHORT_AFTER_TRIM, None)
    if has_low_amplitude_window(mono, sample_rate, settings):
        return CleanedClip(LOW_AMPLITUDE_SEGMENT, None)
    return CleanedClip(KEPT, resample(mono, sample_rate, settings.target_rate))


def has_low_amplitude_window(audio: np.ndarray, sample_rate: int, settings: CleaningSettings) -> bool:
    """Whether any ``segment``-long window (starts every ``shift``, fully inside ``audio``) peaks below threshold.

    The peak of every window comes from one sliding maximum over the clip (scipy's maximum filter), instead of
    a Python loop of slices, which matters for the hour-long EARS recordings.
    """
    window = int(settings.segment * sample_rate)
    step = int(settings.shift * sample_rate)
    if window <= 0 or step <= 0 or audio.size < window:
        return False
    # Shift the filter's origin so that entry i covers audio[i : i + window].
    peaks = maximum_filter1d(np.abs(audio), size=window, origin=-(window // 2), mode="constant", cval=0.0)
    starts = np.arange(0, audio.size - window + 1, step)
    return bool(np.any(peaks[starts] < settings.amp_threshold))


def resample(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """``audio`` at ``target_rate`` (polyphase, exact rational ratio); unchanged when the rates agree."""
    if rate == target_rate:
        return audio
    common = int(np.gcd(int(rate), int(target_rate)))
    return signal.resample_poly(audio, target_rate // common, int(rate) // common)


def clean_folder(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    settings: CleaningSettings = CleaningSettings(),
    *,
    pairs: Iterable[tuple[str, str]] | None = None,
) -> dict[str, str]:
    """Clean every audio file under ``src`` into ``dest`` (created atomically); returns status per source file.

    Without ``pairs`` the relative layout is mirrored (``src/<class>/x.flac`` -> ``dest/<class>/x.wav``);
    ``pairs`` of (source path, destination path), both relative, select and rename files instead, as the
    baseline's pick-up lists map FSD50K and EARS files into ``sound_event/<split>/<Label>/``.
    """
    src_root = Path(src)
    if not src_root.is_dir():
        raise InputError(src_root, "folder to clean not found")
    if pairs is None:
        files = sorted(p for p in src_root.rglob("*") if p.is_file() and p.suffix.lower() in _AUDIO_SUFFIXES)
        relative = [p.relative_to(src_root) for p in files]
        jobs = [(rel.as_posix(), rel.with_suffix(".wav").as_posix()) for rel in relative]
    else:
        jobs = list(pairs)
    targets = [dest_rel for _, dest_rel in jobs]
    if len(set(targets)) != len(targets):
        raise InputError(src_root, "two source files map to the same destination")
    statuses: dict[str, str] = {}
    with atomic_dir(dest) as tmp:
        for src_rel, dest_rel in jobs:
            audio, rate = _read(src_root / src_rel)
            cleaned = clean_clip(audio, rate, settings)
            statuses[src_rel] = cleaned.status
            if cleaned.audio is not None:
                _write(tmp / dest_rel, cleaned.audio, settings.target_rate)
    return statuses


def _read(path: Path) -> tuple[np.ndarray, int]:
    if not path.is_file():
        raise InputError(path, "audio file not found")
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(path, f"cannot read audio ({exc})", field="audio") from exc
    if not np.all(np.isfinite(data)):
        raise InputError(path, "audio holds NaN or infinite samples", field="audio")
    return data.T, int(rate)


def _write(path: Path, audio: np.ndarray, rate: int) -> None:
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:
        audio = audio / peak
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate, subtype="PCM_16", format="WAV")


# ---------------------------------------------------------------------------------------------------------------
# The stage: added banks named in the config (``s5.added_banks``)

# Folder adapters: a config entry -> class -> source files (``.wav``, as the bank reader lists them).
ADDED_LAYOUTS: dict[str, Callable[[Mapping[str, Any]], dict[str, tuple[Path, ...]]]] = {
    # EARS: every .wav under the folder (p001/*.wav, ...) is one class, the entry's ``label``.
    "single_class": lambda bank: scan_single_class(bank["path"], bank["label"]),
    # Semantic Hearing / FSD50K style: one folder per class, renamed (and selected) by ``class_map`` if given.
    "class_folders": lambda bank: scan_class_folders(bank["path"], class_map=bank.get("class_map")),
}
STATUS_COLUMNS = ("source", "status", "cleaned")


def check_added_banks(s5: Mapping[str, Any], *, source: str = "config") -> None:
    """Cross-key checks of ``s5.added_banks`` the schema cannot express, at workflow start-up.

    Names are unique (each names an output folder), and a bank of targets only names S5 classes: the generator
    would otherwise draw a class the tagger and separators cannot encode.
    """
    seen: set[str] = set()
    for index, bank in enumerate(s5.get("added_banks", [])):
        key = f"s5.added_banks.{index}"
        if bank["name"] in seen:
            raise ConfigError(source, f"{key}.name", f"'{bank['name']}' names two added banks")
        seen.add(bank["name"])
        if bank["role"] != ROLE_TARGET:
            continue
        classes = [bank["label"]] if bank["layout"] == "single_class" else list((bank.get("class_map") or {}).values())
        unknown = [label for label in classes if label not in LABELS]
        if unknown:
            raise ConfigError(source, key, f"target classes {unknown} are not S5 classes ({', '.join(LABELS)})")


def added_bank_folders(
    banks: Sequence[Mapping[str, Any]], out_dir: str, splits: Sequence[str]
) -> dict[str, dict[str, list[str]]]:
    """Split -> role -> the cleaned folders (``<out_dir>/<name>``) of the banks that feed it, for ``splits``.

    What the generator's consumers receive (:func:`seldflow.s5.generator.open_generator`'s ``added``).
    """
    by_split: dict[str, dict[str, list[str]]] = {split: {} for split in splits}
    for bank in banks:
        for split in splits:
            if split in bank["splits"]:
                by_split[split].setdefault(bank["role"], []).append(f"{out_dir}/{bank['name']}")
    return by_split


def clean_added_bank(
    bank: Mapping[str, Any], out_dir: str | os.PathLike[str], settings: CleaningSettings
) -> dict[str, tuple[str, str]]:
    """Clean one added bank into ``out_dir/<class>/<n>_<stem>.wav``; returns source -> (status, cleaned file).

    Source and cleaned paths are relative to the bank's folder and ``out_dir``; a dropped clip has no cleaned
    file (""). A bank from which no clip survives is an :class:`InputError` naming its folder.
    """
    root = Path(bank["path"]).resolve()
    clips = ADDED_LAYOUTS[bank["layout"]](bank)
    if bank["role"] == ROLE_TARGET:
        unknown = sorted(set(clips) - set(LABELS))
        if unknown:
            message = f"class folders {unknown} of a target bank are not S5 classes (rename them with a class_map)"
            raise InputError(root, message)
    pairs = [
        (os.path.relpath(path, root), f"{label}/{number:05d}_{path.stem}.wav")
        for label, files in sorted(clips.items())
        for number, path in enumerate(files)
    ]
    statuses = clean_folder(root, out_dir, settings, pairs=pairs)
    if KEPT not in statuses.values():
        raise InputError(root, f"no clip of added bank '{bank['name']}' passed the cleaning ({len(pairs)} checked)")
    return {src: (statuses[src], dest if statuses[src] == KEPT else "") for src, dest in pairs}


def write_statuses(path: str | os.PathLike[str], outcomes: Mapping[str, tuple[str, str]]) -> None:
    """One row per source file: its path, :data:`KEPT` or the reason it was dropped, and the cleaned file."""
    with atomic_file(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(STATUS_COLUMNS)
        writer.writerows((source, status, cleaned) for source, (status, cleaned) in outcomes.items())


def run_cleaning(
    bank: Mapping[str, Any],
    *,
    generator: Mapping[str, Any],
    cleaning: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    statuses_out: str | os.PathLike[str],
) -> dict[str, tuple[str, str]]:
    """The rule's entry point: clean a configured bank at the generator's sample rate, write the outcome CSV.

    ``cleaning`` overrides :class:`CleaningSettings` (the baseline's thresholds); the target rate is always
    ``s5.generator``'s, since the bank reader refuses clips at any other rate.
    """
    sample_rate = settings_from_config(generator).sample_rate
    settings = CleaningSettings(target_rate=sample_rate, **cleaning)
    outcomes = clean_added_bank(bank, out_dir, settings)
    write_statuses(statuses_out, outcomes)
    return outcomes
