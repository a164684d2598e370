"""Benchmark stage: what the workflow cost, how fast its hot paths are, and how they compare with plain versions.

Everything ``make bench`` reports is gathered here (``workflow/scripts/benchmark.py`` only passes paths and
settings):

* :func:`collect_stage_timings` reads every rule's Snakemake ``benchmark:`` TSV (wall time ``s``, ``cpu_time``,
  ``max_rss``) under ``results/benchmarks/`` and ``results/<experiment>/benchmarks/``;
* :func:`throughput` turns them into clips/s for synthesis and features and into the real-time factor of inference,
  with clip counts taken from the outputs (WAVs per split, clips per HDF5 file);
* :func:`naive_pfoa` and :func:`naive_metrics` are deliberately plain reference implementations (librosa per
  channel; a per-frame Python loop with one Hungarian assignment per frame and class) of the PFOA features and
  the official metric. They check the optimised :func:`seldflow.features.pfoa` and
  :func:`seldflow.score.compute_metrics` numerically and give the speed-ups :func:`compare_pfoa` and
  :func:`compare_scorer` measure;
* :func:`compare_decoders` times one forward + backward pass of the zoo's BiMamba and Conformer decoders at their
  reference configuration (the decoders alone, without the CNN14 encoder);
* :func:`render_markdown` / :func:`write_report` write ``benchmark.md`` and ``benchmark.csv``.

Timings are medians of a few repetitions after a warm-up; they describe the machine they ran on and belong in this
report, never in unit-test assertions.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import librosa
import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.feature_kinds import PFOA_IV_CHANNELS, PFOA_IV_EPS, PFOA_LOG_FLOOR, pfoa
from seldflow.io import atomic_file, read_audio
from seldflow.labels import (
    COL_AZIMUTH,
    COL_CLASS,
    COL_DISTANCE,
    COL_FRAME,
    N_CLASSES,
    fold_azimuth,
)
from seldflow.score import compute_metrics, load_label_dir

# Packages whose versions the report lists (missing ones are reported as such).
PACKAGES: tuple[str, ...] = (
    "seldflow",
    "torch",
    "numpy",
    "scipy",
    "librosa",
    "h5py",
    "soundfile",
    "snakemake",
    "pyroomacoustics",
)
# The official scorer's epsilon (see seldflow.score), so the loop and the vectorised scorer agree to the last digit.
_EPS = float(np.finfo(np.float64).eps)
# Metrics compared between the vectorised scorer and the loop.
SCORER_CHECKED = ("F", "DOAE", "DistE", "RDE")


# --------------------------------------------------------------------------------------------------------------
# Report records
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageTiming:
    """One job's Snakemake benchmark: ``stage`` is the rule, ``job`` the benchmark file's path below the folder."""

    stage: str
    job: str
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    repeats: int = 1


@dataclass(frozen=True)
class Figure:
    """A derived figure (throughput, real-time factor, metric) with its unit and a one-line meaning."""

    name: str
    value: float
    unit: str
    meaning: str


@dataclass(frozen=True)
class Comparison:
    """Two timings of the same work; ``ratio = a_seconds / b_seconds`` and ``meaning`` says how to read it."""

    name: str
    work: str
    a_label: str
    a_seconds: float
    b_label: str
    b_seconds: float
    meaning: str
    check: str = ""

    @property
    def ratio(self) -> float:
        return self.a_seconds / self.b_seconds if self.b_seconds > 0 else math.nan


@dataclass
class BenchReport:
    """Everything ``benchmark.md`` and ``benchmark.csv`` hold."""

    title: str = "seldflow benchmark"
    environment: dict[str, str] = field(default_factory=dict)
    stages: list[StageTiming] = field(default_factory=list)
    throughput: list[Figure] = field(default_factory=list)
    metrics: list[Figure] = field(default_factory=list)
    memory: list[Figure] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------------
# Snakemake benchmark files
# --------------------------------------------------------------------------------------------------------------


def _number(text: str) -> float:
    """A benchmark cell as a float; Snakemake writes ``NA`` (or '-') for what it could not measure."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_benchmark_tsv(path: str | os.PathLike[str]) -> dict[str, float]:
    """Wall seconds ``s``, ``cpu_time`` and ``max_rss`` (MB) of one Snakemake benchmark TSV.

    A file with several rows (``repeat()``) gives the mean wall and CPU time and the largest peak RSS; ``repeats``
    counts the rows. Missing columns or ``NA`` cells give NaN.
    """
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: benchmark file has no data row")

    def column(name: str) -> list[float]:
        return [_number(row.get(name, "")) for row in rows]

    def mean(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return statistics.fmean(finite) if finite else math.nan

    rss = [v for v in column("max_rss") if math.isfinite(v)]
    return {
        "s": mean(column("s")),
        "cpu_time": mean(column("cpu_time")),
        "max_rss": max(rss) if rss else math.nan,
        "repeats": float(len(rows)),
    }


def collect_stage_timings(
    benchmark_dirs: Iterable[str | os.PathLike[str]], *, exclude: Iterable[str | os.PathLike[str]] = ()
) -> list[StageTiming]:
    """Every ``*.tsv`` below each folder, as :class:`StageTiming` sorted by stage then job.

    The stage is the first path component below the folder without ``.tsv`` (``room/room1.tsv`` -> ``room``,
    ``train.tsv`` -> ``train``), the rule name under seldflow's benchmark layout. Files in ``exclude`` (e.g. the
    benchmark rule's own file) are skipped; missing folders are skipped too.
    """
    skipped = {Path(p).resolve() for p in exclude}
    timings = []
    for folder in map(Path, benchmark_dirs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.tsv")):
            if path.resolve() in skipped:
                continue
            relative = path.relative_to(folder).with_suffix("")
            values = read_benchmark_tsv(path)
            timings.append(
                StageTiming(
                    stage=relative.parts[0],
                    job=relative.as_posix(),
                    wall_s=values["s"],
                    cpu_s=values["cpu_time"],
                    max_rss_mb=values["max_rss"],
                    repeats=int(values["repeats"]),
                )
            )
    return sorted(timings, key=lambda t: (t.stage, t.job))


def stage_totals(timings: Sequence[StageTiming]) -> list[StageTiming]:
    """Per-stage sums of wall and CPU time and the largest peak RSS (``job`` holds the job count)."""
    stages = sorted({t.stage for t in timings}, key=_stage_order)
    return [_summed(stage, [t for t in timings if t.stage == stage]) for stage in stages]


def _summed(stage: str, jobs: Sequence[StageTiming]) -> StageTiming:
    """Jobs as one timing: wall and CPU seconds added, the largest peak RSS; ``job`` says how many jobs."""
    rss = [t.max_rss_mb for t in jobs if math.isfinite(t.max_rss_mb)]
    return StageTiming(
        stage=stage,
        job=f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}",
        wall_s=_nansum(t.wall_s for t in jobs),
        cpu_s=_nansum(t.cpu_s for t in jobs),
        max_rss_mb=max(rss) if rss else math.nan,
    )


# Workflow order of seldflow's rules; unknown stages follow alphabetically.
_STAGE_ORDER = (
    "download",
    "source_bank",
    "room",
    "measured_room",
    "mixtures",
    "synthetic_split",
    "starss_stereo",
    "starss_windows",
    "split_check",
    "features",
    "feature_index",
    "train",
    "infer",
    "score",
    "report",
)


def _stage_order(stage: str) -> tuple[int, str]:
    return (_STAGE_ORDER.index(stage) if stage in _STAGE_ORDER else len(_STAGE_ORDER), stage)


def _nansum(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return math.fsum(finite) if finite else math.nan


# --------------------------------------------------------------------------------------------------------------
# Throughput from the outputs
# --------------------------------------------------------------------------------------------------------------


def count_wavs(folder: str | os.PathLike[str]) -> int:
    """Number of ``*.wav`` files directly in ``folder`` (0 when it does not exist)."""
    path = Path(folder)
    return sum(1 for _ in path.glob("*.wav")) if path.is_dir() else 0


def h5_clip_info(path: str | os.PathLike[str]) -> dict[str, float]:
    """Clips in a features file (LR-swap twins included), twins among them and the seconds of audio of one clip."""
    with h5py.File(path, "r") as h5:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in h5["clips"][()]]
        config = json.loads(h5.attrs["config"])
        sample_rate = float(h5.attrs["sample_rate"])
    twins = sum(1 for n in names if n.endswith("_LRswap"))
    clip_samples = float(config.get("clip_samples", 5 * sample_rate))
    return {"clips": float(len(names)), "twins": float(twins), "clip_seconds": clip_samples / sample_rate}


def _split_jobs(timings: Sequence[StageTiming], stage: str, split: str) -> StageTiming | None:
    """The jobs of one stage and split (its shards, or the single job), summed into one timing; None if none."""
    jobs = [t for t in timings if t.stage == stage and split in t.job.split("/")[1:]]
    return _summed(stage, jobs) if jobs else None


def throughput(
    timings: Sequence[StageTiming],
    *,
    audio_dirs: Mapping[str, str | os.PathLike[str]],
    feature_files: Mapping[str, str | os.PathLike[str]],
    test_splits: Sequence[str],
) -> list[Figure]:
    """Synthesis and feature clips/s per split and inference real-time factor per test split.

    ``audio_dirs`` / ``feature_files`` map each split to its WAV folder and features HDF5 file. Synthesis counts the
    split's WAVs over the summed wall time of its ``mixtures`` shard jobs (absent when the dataset was not
    synthesized); features count the clips of the split's file (twins included, each is a feature extraction) over
    its ``features`` shard jobs: per job-second, so shards running side by side finish sooner than this suggests.
    Inference divides the ``infer`` job's wall time (model loading included) by the seconds of audio it read.
    """
    figures = []
    for split, folder in audio_dirs.items():
        job = _split_jobs(timings, "mixtures", split)
        n_wavs = count_wavs(folder)
        if job is not None and n_wavs and job.wall_s > 0:
            figures.append(
                Figure(
                    f"synthesis {split}",
                    n_wavs / job.wall_s,
                    "clips/s",
                    f"{n_wavs} mixtures (FOA + stereo + labels) in {job.wall_s:.1f} s, {job.job}",
                )
            )
    for split, path in feature_files.items():
        job = _split_jobs(timings, "features", split)
        if job is None or not Path(path).is_file() or job.wall_s <= 0:
            continue
        info = h5_clip_info(path)
        twins = f", {int(info['twins'])} of them LR-swap twins" if info["twins"] else ""
        figures.append(
            Figure(
                f"features {split}",
                info["clips"] / job.wall_s,
                "clips/s",
                f"{int(info['clips'])} clips{twins}, in {job.wall_s:.1f} s of {job.job} (reading + extraction)",
            )
        )
    for split in test_splits:
        job = _split_jobs(timings, "infer", split)
        path = feature_files.get(split)
        if job is None or path is None or not Path(path).is_file():
            continue
        info = h5_clip_info(path)
        audio_seconds = (info["clips"] - info["twins"]) * info["clip_seconds"]
        if audio_seconds > 0:
            figures.append(
                Figure(
                    f"inference RTF {split}",
                    job.wall_s / audio_seconds,
                    "s/s",
                    f"{job.wall_s:.1f} s of inference job (model loading included) / {audio_seconds:.0f} s of audio;"
                    " below 1 is faster than real time",
                )
            )
    return figures


def noop_dry_run(
    workdir: str | os.PathLike[str] = ".", *, snakefile: str | os.PathLike[str] = "Snakefile", repeats: int = 3
) -> Figure:
    """Seconds a dry run of the finished default target takes (median): the cost of every `snakemake` call.

    The DAG grows with shards rather than clips, so this should stay around a second or two at thousands of clips.
    ``--nolock`` because the benchmark job runs inside the workflow's own (locked) run.
    """
    command = [str(Path(sys.executable).parent / "snakemake"), "--snakefile", str(Path(snakefile).resolve())]
    command += ["--directory", str(Path(workdir).resolve()), "-n", "--nolock", "--cores", "1", "all"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0 or "Nothing to be done" not in result.stdout + result.stderr:
            tail = (result.stdout + result.stderr)[-500:]
            return Figure("no-op dry run", math.nan, "s", f"workflow not finished or dry run failed: {tail}")
    return Figure("no-op dry run", statistics.median(times), "s", f"median of {repeats} `snakemake -n all` calls")


def metric_figures(metrics: Mapping[str, Any]) -> list[Figure]:
    """F, DOAE, RDE (and DistE) of a ``metrics.json``; missing or null values are NaN."""
    spec = [
        ("F", "", "macro F (20°, relative distance 1.0), fraction"),
        ("DOAE", "°", "DOA error of paired tracks"),
        ("RDE", "", "relative distance error of paired tracks"),
        ("DistE", "cm", "absolute distance error of paired tracks"),
    ]
    return [
        Figure(name, math.nan if metrics.get(name) is None else float(metrics[name]), unit, meaning)
        for name, unit, meaning in spec
    ]


# --------------------------------------------------------------------------------------------------------------
# Plain reference implementations
# --------------------------------------------------------------------------------------------------------------


def naive_pfoa(
    stereo: np.ndarray,
    *,
    sample_rate: int = 24000,
    n_fft: int = 1024,
    win_length: int = 960,
    hop_length: int = 480,
    n_mels: int = 64,
    fmin: float = 20.0,
    fmax: float = 12000.0,
) -> np.ndarray:
    """PFOA features the plain way: one ``librosa.stft`` per pseudo-FOA channel, NumPy for the rest.

    Same recipe and parameters as :func:`seldflow.features.pfoa` (peak normalisation, W = (L+R)/2, Y = (L-R)/2,
    silent Z and X, periodic Hann window with reflect-padded centred frames, HTK/Slaney mel filters, log10 with a
    1e-10 floor, unit-normalised active intensity Re(W · conj(c)) mel-projected), but with no caching or batching:
    the filterbank is rebuilt and each channel transformed separately, as a per-file script would.
    """
    audio = np.asarray(stereo, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] != 2:
        raise ValueError(f"expected stereo audio of shape (2, samples), got {audio.shape}")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio / peak
    left, right = audio
    silent = np.zeros_like(left)
    channels = [(left + right) / 2, (left - right) / 2, silent, silent]  # ACN W, Y, Z, X
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True, norm="slaney")
    specs = [
        librosa.stft(
            channel,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window="hann",
            center=True,
            pad_mode="reflect",
        )
        for channel in channels
    ]  # each (freq, T)
    out = []
    for spec in specs:
        power = np.abs(spec) ** 2
        out.append(np.log10(np.maximum(mel @ power, PFOA_LOG_FLOOR)).T)
    reference = specs[0]
    components = [np.real(reference * np.conj(specs[c])) for c in PFOA_IV_CHANNELS]
    norm = np.sqrt(sum(c**2 for c in components)) + PFOA_IV_EPS
    for component in components:
        out.append((mel @ (component / norm)).T)
    return np.stack(out).astype(np.float32)


def naive_metrics(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    doa_threshold: float = 20.0,
    dist_threshold: float = math.inf,
    reldist_threshold: float = 1.0,
    n_classes: int = N_CLASSES,
) -> dict[str, Any]:
    """The official DCASE2025 metric as a plain loop over clips, frames and classes (macro averaging).

    Each reference clip is scored on frames ``0 .. max_reference_frame - 1``; a clip without a prediction counts
    as predicting nothing. In each frame and class the tracks present on both sides are paired by
    ``scipy.optimize.linear_sum_assignment`` on the folded-azimuth difference; a pair over a threshold counts as a
    spatial false positive; unpaired tracks are false negatives or false positives. Returns ``F``, ``DOAE``,
    ``DistE``, ``RDE`` and ``classwise_F``, as :func:`seldflow.score.compute_metrics` (without on-screen options).
    """
    tp, fp_spatial, fp, fn, matched = (np.zeros(n_classes) for _ in range(5))
    sum_doa, sum_dist, sum_reldist = (np.zeros(n_classes) for _ in range(3))
    for name, ref_rows in references.items():
        ref = np.asarray(ref_rows, dtype=np.float64).reshape(-1, 6)
        pred = np.asarray(predictions.get(name, np.zeros((0, 6))), dtype=np.float64).reshape(-1, 6)
        n_frames = int(ref[:, COL_FRAME].max()) if len(ref) else 0
        for frame in range(n_frames):
            ref_frame = ref[ref[:, COL_FRAME] == frame]
            pred_frame = pred[pred[:, COL_FRAME] == frame]
            for cls in range(n_classes):
                r = ref_frame[ref_frame[:, COL_CLASS] == cls]
                p = pred_frame[pred_frame[:, COL_CLASS] == cls]
                if len(r) and len(p):
                    ref_az = fold_azimuth(r[:, COL_AZIMUTH])
                    pred_az = fold_azimuth(p[:, COL_AZIMUTH])
                    cost = np.abs(ref_az[:, None] - pred_az[None, :])
                    for i, j in zip(*linear_sum_assignment(cost), strict=True):
                        doa_err = cost[i, j]
                        ref_dist = r[i, COL_DISTANCE]
                        dist_err = abs(ref_dist - p[j, COL_DISTANCE])
                        reldist_err = dist_err / (ref_dist + _EPS)
                        wrong = doa_err > doa_threshold or dist_err > dist_threshold or reldist_err > reldist_threshold
                        fp_spatial[cls] += wrong
                        tp[cls] += not wrong
                        sum_doa[cls] += doa_err
                        sum_dist[cls] += dist_err
                        sum_reldist[cls] += reldist_err
                        matched[cls] += 1
                    fn[cls] += max(len(r) - len(p), 0)
                    fp[cls] += max(len(p) - len(r), 0)
                else:
                    fn[cls] += len(r)
                    fp[cls] += len(p)

    classwise_f = tp / (_EPS + tp + fp_spatial + 0.5 * (fp + fn))

    def macro_error(total: np.ndarray) -> float:
        values = [total[c] / (matched[c] + _EPS) for c in range(n_classes) if matched[c] > 0]
        return float(np.mean(values)) if values else math.nan

    return {
        "F": float(classwise_f.mean()),
        "DOAE": macro_error(sum_doa),
        "DistE": macro_error(sum_dist),
        "RDE": macro_error(sum_reldist),
        "classwise_F": classwise_f.tolist(),
        "TP": int(tp.sum()),
        "FP": int(fp.sum()),
        "FP_spatial": int(fp_spatial.sum()),
        "FN": int(fn.sum()),
    }


def metric_difference(a: Mapping[str, Any], b: Mapping[str, Any], names: Sequence[str] = SCORER_CHECKED) -> float:
    """Largest absolute difference of the scalar metrics ``names`` and ``classwise_F`` (NaN = NaN counts as 0)."""
    pairs = [(float(a[n]), float(b[n])) for n in names]
    pairs += list(zip(map(float, a["classwise_F"]), map(float, b["classwise_F"]), strict=True))
    worst = 0.0
    for x, y in pairs:
        if math.isnan(x) and math.isnan(y):
            continue
        worst = max(worst, abs(x - y) if math.isfinite(x) and math.isfinite(y) else math.inf)
    return worst


# --------------------------------------------------------------------------------------------------------------
# Timed comparisons
# --------------------------------------------------------------------------------------------------------------


def median_times(functions: Mapping[str, Callable[[], Any]], *, repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """Median wall seconds of each function over ``repeats`` timed calls, after ``warmup`` untimed calls of each.

    The functions take turns (A, B, A, B, ...), so a change of machine load during the measurement (other jobs on
    a shared machine) affects both alike and their ratio stays meaningful.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def compare_pfoa(
    clips: Sequence[np.ndarray], *, repeats: int = 3, warmup: int = 1, **params: Any
) -> tuple[Comparison, float]:
    """Time :func:`naive_pfoa` against :func:`seldflow.features.pfoa` over ``clips`` (in memory, one at a time).

    Returns the comparison (seconds per clip; ratio = naive / seldflow, the speed-up of seldflow) and the largest
    absolute difference between the two implementations' features over all clips.
    """
    if not clips:
        raise ValueError("compare_pfoa needs at least one clip")
    diffs = np.array([np.abs(naive_pfoa(c, **params) - pfoa(c, **params)).max(axis=(1, 2)) for c in clips])
    max_diff = float(diffs.max())
    log_mel_diff, intensity_diff = float(diffs[:, :4].max()), float(diffs[:, 4:].max())

    def run(function: Callable[..., np.ndarray]) -> Callable[[], None]:
        def call() -> None:
            for clip in clips:
                function(clip, **params)

        return call

    timed = median_times({"naive": run(naive_pfoa), "seldflow": run(pfoa)}, repeats=repeats, warmup=warmup)
    comparison = Comparison(
        name="PFOA features",
        work=f"PFOA features (7×T×64) of one 5-s test clip, averaged over {len(clips)} clips in memory",
        a_label="plain librosa (naive_pfoa)",
        a_seconds=timed["naive"] / len(clips),
        b_label="seldflow.features.pfoa",
        b_seconds=timed["seldflow"] / len(clips),
        meaning="speed-up of seldflow's pfoa over the plain librosa version (>1: seldflow faster)",
        check=f"max |naive - pfoa| = {max_diff:.1e} (log10-mel {log_mel_diff:.1e}, intensity {intensity_diff:.1e})",
    )
    return comparison, max_diff


def compare_scorer(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    repeats: int = 3,
    warmup: int = 1,
    **thresholds: Any,
) -> tuple[Comparison, float]:
    """Time :func:`naive_metrics` against :func:`seldflow.score.compute_metrics` on the same label tables.

    Returns the comparison (seconds per scoring of all clips; ratio = loop / vectorised, the speed-up) and the
    largest absolute difference of F, DOAE, DistE, RDE and the class-wise F between them.
    """
    fast = compute_metrics(references, predictions, **thresholds)
    slow = naive_metrics(references, predictions, **thresholds)
    diff = metric_difference(fast, slow)
    timed = median_times(
        {
            "loop": lambda: naive_metrics(references, predictions, **thresholds),
            "vectorised": lambda: compute_metrics(references, predictions, **thresholds),
        },
        repeats=repeats,
        warmup=warmup,
    )
    comparison = Comparison(
        name="scorer",
        work=f"official metric over {len(references)} clips (labels in memory)",
        a_label="per-frame Python loop + Hungarian (naive_metrics)",
        a_seconds=timed["loop"],
        b_label="seldflow.score.compute_metrics",
        b_seconds=timed["vectorised"],
        meaning="speed-up of the vectorised scorer over the per-frame loop (>1: seldflow faster)",
        check=f"max |Δ| of F, DOAE, DistE, RDE, class-wise F = {diff:.1e} (F {fast['F']:.4f})",
    )
    return comparison, diff


def reference_decoders(d_model: int = 2048) -> dict[str, Callable[[], Any]]:
    """Factories of the zoo's BiMamba and Conformer decoders at their reference configuration for width ``d_model``."""
    from seldflow.models.conformer import conformer
    from seldflow.models.mamba import bimamba_decoder

    return {"BiMamba": lambda: bimamba_decoder(d_model), "Conformer": lambda: conformer(d_model)}


def compare_decoders(
    *,
    d_model: int = 2048,
    length: int = 32,
    batch: int = 4,
    repeats: int = 3,
    warmup: int = 1,
    seed: int = 0,
    factories: Mapping[str, Callable[[], Any]] | None = None,
) -> Comparison:
    """CPU time of one training-mode forward + backward pass, BiMamba vs Conformer decoder; ratio BiMamba/Conformer.

    Both decoders map ``(batch, length, d_model)`` to the same shape; the loss is the mean square of the output,
    gradients are cleared before each pass and no optimiser step is taken. ``factories`` (names ``BiMamba`` and
    ``Conformer``) default to :func:`reference_decoders`.
    """
    import torch

    factories = factories or reference_decoders(d_model)
    torch.manual_seed(seed)
    decoders = {name: factories[name]().train() for name in ("BiMamba", "Conformer")}
    x = torch.randn(batch, length, d_model, generator=torch.Generator().manual_seed(seed))

    def step(decoder: torch.nn.Module) -> Callable[[], None]:
        def call() -> None:
            decoder.zero_grad(set_to_none=True)
            decoder(x).square().mean().backward()

        return call

    sizes = {name: sum(p.numel() for p in d.parameters()) for name, d in decoders.items()}
    timed = median_times({name: step(d) for name, d in decoders.items()}, repeats=repeats, warmup=warmup)
    del decoders
    gc.collect()
    return Comparison(
        name="decoders (CPU fwd+bwd)",
        work=f"forward + backward, d {d_model}, {length} steps, batch {batch}; median of {repeats}, {warmup} warm-up",
        a_label=f"BiMamba ({sizes['BiMamba'] / 1e6:.1f} M parameters)",
        a_seconds=timed["BiMamba"],
        b_label=f"Conformer ({sizes['Conformer'] / 1e6:.1f} M parameters)",
        b_seconds=timed["Conformer"],
        meaning="BiMamba time / Conformer time (>1: BiMamba slower)",
    )


# --------------------------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------------
# Training memory over growing datasets
# --------------------------------------------------------------------------------------------------------------


def write_synthetic_shards(folder: Path, n_clips: int, shard_clips: int, shape: tuple[int, int, int]) -> Path:
    """Feature shards of random clips plus their index: the layout training reads, at any size, in seconds."""
    from seldflow.shards import shard_count, shard_range, write_index

    rng = np.random.default_rng(0)
    shards = []
    for shard in range(shard_count(n_clips, shard_clips)):
        clips = shard_range(shard, shard_clips, n_clips)
        path = folder / f"shard-{shard:04d}.h5"
        with h5py.File(path, "w") as h5:
            h5.attrs["kind"] = "pfoa"
            h5.attrs["config"] = json.dumps({"kind": "pfoa"})
            h5.attrs["label_frames"] = 50
            h5.attrs["label_format"] = "dcase2025"
            names = np.array([f"clip{i:06d}" for i in clips], dtype=object)
            h5.create_dataset("clips", data=names, dtype=h5py.string_dtype())
            h5.create_dataset("label_rows", data=np.zeros((0, 7), dtype=np.int64))
            features = h5.create_dataset("features", (len(clips), *shape), np.float32, chunks=(1, *shape))
            for start in range(0, len(clips), 16):
                count = min(16, len(clips) - start)
                features[start : start + count] = rng.standard_normal((count, *shape), dtype=np.float32)
        shards.append(path)
    index = folder / "split.h5"
    write_index(shards, index)
    return index


def _epoch_peak_rss_mb(index: str, batch_size: int, max_memory_mb: int) -> float:
    """Largest resident memory (MB) sampled while opening the store and reading one shuffled epoch of batches.

    Sampled current RSS rather than the process's lifetime peak: importing torch can briefly use more than a small
    dataset does (compiling bytecode in a fresh environment), which would hide what the epoch itself holds.
    """
    import psutil

    from seldflow.clipstore import ClipStore, epoch_batches
    from seldflow.feature_files import open_feature_file
    from seldflow.tasks import build_task

    process = psutil.Process()
    file = open_feature_file(Path(index))
    store = ClipStore([file], np.arange(len(file.names)), build_task(None), max_memory_mb=max_memory_mb)
    peak = process.memory_info().rss
    for batch in epoch_batches(len(store), batch_size, seed=0, epoch=0):
        store.batch(batch)
        peak = max(peak, process.memory_info().rss)
    store.close()
    return peak / 2**20


def training_memory(
    folder: str | os.PathLike[str],
    *,
    sizes: Sequence[int] = (256, 1024),
    shard_clips: int = 128,
    batch_size: int = 32,
    shape: tuple[int, int, int] = (7, 251, 64),
) -> list[Figure]:
    """Peak RSS of a training epoch streamed from shards, for growing datasets, each in a fresh process.

    Streaming (``max_memory_mb`` 0) should stay flat as the dataset grows: one batch and the HDF5 chunk cache are
    resident, not the split. Loading into memory is measured alongside for contrast. The shards are written to
    ``folder`` and deleted afterwards.
    """
    import multiprocessing
    import shutil

    figures = []
    context = multiprocessing.get_context("spawn")
    for n_clips in sizes:
        work = Path(folder) / f"memory-{n_clips}"
        work.mkdir(parents=True, exist_ok=True)
        try:
            index = write_synthetic_shards(work, n_clips, shard_clips, shape)
            gigabytes = n_clips * 4 * math.prod(shape) / 2**30
            for mode, limit in (("streamed", 0), ("in memory", 1 << 20)):
                with context.Pool(1) as pool:
                    peak = pool.apply(_epoch_peak_rss_mb, (str(index), batch_size, limit))
                figures.append(
                    Figure(
                        f"training epoch, {n_clips} clips, {mode}",
                        peak,
                        "MB RSS (peak)",
                        f"{gigabytes:.2f} GB of features in {math.ceil(n_clips / shard_clips)} shards, "
                        f"batches of {batch_size}",
                    )
                )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return figures


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution, or ``not installed``."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(repo: str | os.PathLike[str] = ".") -> str:
    """``HEAD`` of the repository, with ``+ uncommitted changes`` when tracked files differ; ``unknown`` otherwise."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} + uncommitted changes" if dirty else commit


def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` (Linux) or ``platform``; ``unknown`` when neither says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(repo: str | os.PathLike[str] = ".", *, threads: int | None = None) -> dict[str, str]:
    """Package versions, git commit, platform, CPU model and core counts, torch threads and GPU (if any)."""
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    info = {
        "date (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "git commit": git_commit(repo),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "CPU": cpu_model(),
        "CPU cores (usable / total)": f"{usable} / {os.cpu_count()}",
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a",
        "threads (job / torch)": f"{threads if threads is not None else 'n/a'} / {torch.get_num_threads()}",
        "GPU": ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        if torch.cuda.is_available()
        else "none",
    }
    info.update({f"{name} version": version for name, version in package_versions().items()})
    return info


# --------------------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 3) -> str:
    if not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.{digits - 1}f}"
    return f"{value:.{digits}g}"


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _figure_section(
    title: str, figures: Sequence[Figure], header: Sequence[str] = ("figure", "value", "unit", "how")
) -> list[str]:
    """A titled table of figures, or nothing when there are none."""
    if not figures:
        return []
    rows = ((f.name, _fmt(f.value), f.unit, f.meaning) for f in figures)
    return [f"## {title}", "", *_table(header, rows), ""]


def render_markdown(report: BenchReport) -> str:
    """The report as a Markdown document: comparisons first (the headline), then figures, stages, environment."""
    lines = [f"# {report.title}", ""]
    if report.comparisons:
        lines += ["## Comparisons (measured in this run)", ""]
        lines += [
            "Each ratio is *time of A / time of B* for the same work; the last column but one says how to read it.",
            "",
        ]
        lines += _table(
            ("comparison", "work", "A", "time A", "B", "time B", "ratio A/B", "meaning", "check"),
            (
                (
                    c.name,
                    c.work,
                    c.a_label,
                    _seconds(c.a_seconds),
                    c.b_label,
                    _seconds(c.b_seconds),
                    f"**{_fmt(c.ratio)}×**",
                    c.meaning,
                    c.check,
                )
                for c in report.comparisons
            ),
        )
        lines.append("")
    lines += _figure_section("Throughput (from the workflow's benchmark files and outputs)", report.throughput)
    lines += _figure_section("Training memory (an epoch of batches read from feature shards)", report.memory)
    lines += _figure_section("Model metrics (metrics.json)", report.metrics, ("metric", "value", "unit", "meaning"))
    if report.stages:
        lines += ["## Stages (Snakemake `benchmark:` files)", ""]
        lines += [
            "Wall and CPU seconds and peak resident memory of the run that last produced each output "
            "(CPU/wall above 1 means several cores were busy).",
            "",
        ]
        lines += _table(
            ("stage", "jobs", "wall s", "CPU s", "CPU/wall", "peak RSS MB"),
            (
                (
                    t.stage,
                    t.job,
                    _fmt(t.wall_s),
                    _fmt(t.cpu_s),
                    _fmt(t.cpu_s / t.wall_s if t.wall_s else math.nan),
                    _fmt(t.max_rss_mb),
                )
                for t in stage_totals(report.stages)
            ),
        )
        lines += ["", "<details><summary>per job</summary>", ""]
        lines += _table(
            ("job", "wall s", "CPU s", "peak RSS MB"),
            ((t.job, _fmt(t.wall_s), _fmt(t.cpu_s), _fmt(t.max_rss_mb)) for t in report.stages),
        )
        lines += ["", "</details>", ""]
    if report.environment:
        lines += ["## Environment", ""]
        lines += _table(("item", "value"), report.environment.items())
        lines.append("")
    if report.notes:
        lines += ["## Notes", ""]
        lines += [f"- {note}" for note in report.notes]
        lines.append("")
    return "\n".join(lines)


CSV_HEADER = ("section", "item", "metric", "value", "unit", "note")


def csv_rows(report: BenchReport) -> list[tuple[str, str, str, str, str, str]]:
    """The report as long-format rows ``section, item, metric, value, unit, note`` (numbers unrounded)."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    for c in report.comparisons:
        rows.append(("comparison", c.name, "a_seconds", repr(c.a_seconds), "s", c.a_label))
        rows.append(("comparison", c.name, "b_seconds", repr(c.b_seconds), "s", c.b_label))
        rows.append(("comparison", c.name, "ratio_a_over_b", repr(c.ratio), "", f"{c.meaning}; {c.check}".strip("; ")))
    for f in report.throughput:
        rows.append(("throughput", f.name, "value", repr(f.value), f.unit, f.meaning))
    for f in report.metrics:
        rows.append(("metrics", f.name, "value", repr(f.value), f.unit, f.meaning))
    for f in report.memory:
        rows.append(("memory", f.name, "value", repr(f.value), f.unit, f.meaning))
    for t in report.stages:
        rows.append(("stage", t.job, "wall", repr(t.wall_s), "s", t.stage))
        rows.append(("stage", t.job, "cpu_time", repr(t.cpu_s), "s", t.stage))
        rows.append(("stage", t.job, "max_rss", repr(t.max_rss_mb), "MB", t.stage))
    for key, value in report.environment.items():
        rows.append(("environment", key, "value", value, "", ""))
    return rows


def render_csv(report: BenchReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(report))
    return buffer.getvalue()


def write_report(report: BenchReport, markdown_path: str | os.PathLike[str], csv_path: str | os.PathLike[str]) -> None:
    """Write ``benchmark.md`` and ``benchmark.csv`` atomically."""
    for path, text in ((markdown_path, render_markdown(report)), (csv_path, render_csv(report))):
        with atomic_file(path) as tmp:
            tmp.write_text(text)


# --------------------------------------------------------------------------------------------------------------
# The whole benchmark
# --------------------------------------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"[bench] {message}", flush=True, file=sys.stderr)


def run_benchmark(
    *,
    benchmark_dirs: Sequence[str | os.PathLike[str]],
    own_benchmark: str | os.PathLike[str] | None,
    audio_dirs: Mapping[str, str | os.PathLike[str]],
    feature_files: Mapping[str, str | os.PathLike[str]],
    test_splits: Sequence[str],
    metrics_json: str | os.PathLike[str],
    pfoa_audio_dir: str | os.PathLike[str],
    references: Sequence[str | os.PathLike[str]],
    predictions: Sequence[str | os.PathLike[str]],
    feature_params: Mapping[str, Any],
    score_params: Mapping[str, Any],
    sample_rate: int,
    pfoa_clips: int,
    repeats: int,
    decoder: Mapping[str, int],
    threads: int | None = None,
    title: str = "seldflow benchmark",
    repo: str | os.PathLike[str] = ".",
    snakefile: str | os.PathLike[str] = "Snakefile",
) -> BenchReport:
    """Gather every section of the report; the timed comparisons run here, one after the other."""
    report = BenchReport(title=title)
    report.environment = environment(repo, threads=threads)
    report.stages = collect_stage_timings(benchmark_dirs, exclude=[own_benchmark] if own_benchmark else [])
    report.throughput = throughput(
        report.stages, audio_dirs=audio_dirs, feature_files=feature_files, test_splits=test_splits
    )
    report.metrics = metric_figures(json.loads(Path(metrics_json).read_text()))
    _log("no-op dry run")
    report.throughput.append(noop_dry_run(".", snakefile=snakefile))

    params = {k: feature_params[k] for k in ("n_fft", "win_length", "hop_length", "n_mels")}
    paths = sorted(Path(pfoa_audio_dir).glob("*.wav"))[:pfoa_clips]
    _log(f"PFOA: {len(paths)} clips of {pfoa_audio_dir}")
    clips = [read_audio(p, sample_rate=sample_rate, channels=2) for p in paths]
    pfoa_comparison, _ = compare_pfoa(clips, repeats=repeats, sample_rate=sample_rate, **params)
    report.comparisons.append(pfoa_comparison)

    _log("scorer")
    preds = {stem: rows for folder in predictions for stem, rows in load_label_dir(folder).items()}
    refs = {stem: rows for folder in references for stem, rows in load_label_dir(folder).items()}
    thresholds = {
        "doa_threshold": float(score_params["doa_threshold_deg"]),
        "reldist_threshold": float(score_params["reldist_threshold"]),
    }
    scorer_comparison, _ = compare_scorer(refs, preds, repeats=repeats, **thresholds)
    report.comparisons.append(scorer_comparison)

    _log("training memory")
    with tempfile.TemporaryDirectory(prefix="seldflow-memory-") as scratch:
        report.memory = training_memory(scratch)

    _log(f"decoders: {dict(decoder)}")
    report.comparisons.append(compare_decoders(**{"repeats": repeats, **decoder}))  # decoder may set repeats

    report.notes = [
        "Comparisons run in this job, one after the other, on the CPU threads given to it; stage figures come "
        "from the benchmark files of the run that last produced each output (a reused output keeps its old time).",
        "PFOA and scorer timings exclude file reading (clips and label tables are loaded first); both "
        "implementations see the same arrays, and the check column gives their numerical agreement.",
        "Timings on a shared machine vary between runs; read the ratios, measured side by side, rather than "
        "the absolute times.",
    ]
    return report
