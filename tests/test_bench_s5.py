"""The S5 benchmark rows: the plain CA-SDRi loop against hand values and the official scorer, and the timed rows.

Soundscapes are tiny WAV folders written here. The analytic folder is built from two orthogonal signals whose
powers are known, so every SNR has a closed form: s1 = 0.5 (constant), s2 = 0.25·(±1 alternating),
e = 0.0625·(±1 alternating); ‖x‖² = N·amplitude², and the alternating signals are orthogonal to the constant.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import default_config, planned_jobs, run_snakemake, tiny_config, write_config

from seldflow.bench.records import BenchReport, Comparison, Figure
from seldflow.bench.run import _s5_rows
from seldflow.bench.s5 import compare_ca_sdri, generator_throughput, naive_ca_sdri
from seldflow.metrics.ca_sdri import score_ca_sdri
from seldflow.s5.generator import open_generator
from seldflow.s5.synthesis import make_embedded_banks

SAMPLE_RATE = 1000
N = 200  # even, so the alternating signals are orthogonal to the constant one
CHANNELS = 4
EPS32 = 2.0**-23  # float32 machine epsilon, the official SNR's eps

S1 = np.full(N, 0.5)
ALTERNATING = np.where(np.arange(N) % 2 == 0, 1.0, -1.0)
S2 = 0.25 * ALTERNATING
ERROR = 0.0625 * ALTERNATING


def snr_by_hand(signal_power: float, error_power: float) -> float:
    return 10.0 * math.log10((signal_power + EPS32) / (error_power + EPS32))


P1, P2, PE = N * 0.5**2, N * 0.25**2, N * 0.0625**2
# Mixture channel 0 is s1 + s2 everywhere: against s1 its error is s2, against s2 it is s1.
SDRI_S1 = snr_by_hand(P1, PE) - snr_by_hand(P1, P2)  # estimate s1 + e
SDRI_S2 = snr_by_hand(P2, 0.0) - snr_by_hand(P2, P1)  # perfect estimate of s2: the eps sets its SNR


def folders(root: Path) -> tuple[Path, Path, Path]:
    dirs = (root / "soundscape", root / "oracle_target", root / "estimates")
    for folder in dirs:
        folder.mkdir(parents=True)
    return dirs


def write_soundscape(
    dirs: tuple[Path, Path, Path],
    name: str,
    mixture_ch0: np.ndarray,
    oracle: dict[str, np.ndarray],
    estimates: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> None:
    """A 4-channel mixture (channels 1-3 random, never scored) and mono oracle and estimate files, float32 WAV."""
    mixture_dir, oracle_dir, estimate_dir = dirs
    mixture = np.column_stack([mixture_ch0, rng.uniform(-0.5, 0.5, (len(mixture_ch0), CHANNELS - 1))])
    sf.write(mixture_dir / f"{name}.wav", mixture.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    for folder, sources in ((oracle_dir, oracle), (estimate_dir, estimates)):
        for label, signal in sources.items():
            sf.write(folder / f"{name}_{label}.wav", signal.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")


def write_analytic(root: Path) -> tuple[Path, Path, Path]:
    """Four soundscapes: all labels right (a), an FP (b), an FN (c), no estimate at all (d)."""
    dirs = folders(root)
    rng = np.random.default_rng(1)
    mixture = S1 + S2
    write_soundscape(dirs, "a", mixture, {"Speech": S1, "Doorbell": S2}, {"Speech": S1 + ERROR, "Doorbell": S2}, rng)
    write_soundscape(dirs, "b", mixture, {"Speech": S1}, {"Speech": S1 + ERROR, "AlarmClock": S2}, rng)
    write_soundscape(dirs, "c", mixture, {"Doorbell": S2, "Buzzer": S1}, {"Doorbell": S2}, rng)
    write_soundscape(dirs, "d", mixture, {"Speech": S1}, {}, rng)
    return dirs


def write_random(root: Path, seed: int = 3) -> tuple[Path, Path, Path]:
    """The same label pattern as :func:`write_analytic` with random signals (estimates = oracle + noise)."""
    dirs = folders(root)
    rng = np.random.default_rng(seed)
    patterns = [
        ("s0", ["Speech", "Doorbell"], ["Speech", "Doorbell"]),
        ("s1", ["Speech"], ["Speech", "AlarmClock"]),
        ("s2", ["Doorbell", "Buzzer", "Cough"], ["Doorbell", "Cough"]),
        ("s3", ["Speech"], []),
    ]
    for name, oracle_labels, estimate_labels in patterns:
        oracle = {label: rng.normal(0, 0.1, N) for label in oracle_labels}
        mixture = sum(oracle.values()) + rng.normal(0, 0.05, N)
        estimates = {
            label: oracle[label] + rng.normal(0, 0.03, N) if label in oracle else rng.normal(0, 0.1, N)
            for label in estimate_labels
        }
        write_soundscape(dirs, name, mixture, oracle, estimates, rng)
    return dirs


def test_naive_ca_sdri_equals_hand_values(tmp_path: Path) -> None:
    dirs = write_analytic(tmp_path)
    # a: two TPs; b: one TP and an FP; c: one TP and an FN; d: one FN.
    per_soundscape = [(SDRI_S1 + SDRI_S2) / 2, SDRI_S1 / 2, SDRI_S2 / 2, 0.0]
    result = naive_ca_sdri(*dirs)
    assert result["n_soundscapes"] == 4
    assert result["CA-SDRi"] == pytest.approx(sum(per_soundscape) / 4, abs=1e-4)
    assert result["label_accuracy"] == 0.25
    # The perfect estimate's SNR is set by the float32 eps: ~80 dB here, ~150 dB with a float64 eps.
    assert 80 < snr_by_hand(P2, 0.0) < 81


def test_naive_ca_sdri_one_soundscape_by_hand(tmp_path: Path) -> None:
    dirs = folders(tmp_path)
    write_soundscape(dirs, "only", S1 + S2, {"Speech": S1}, {"Speech": S1 + ERROR}, np.random.default_rng(0))
    # 10·log10(64) − 10·log10(4) = 10·log10(16) dB (eps shifts it by far less than the tolerance).
    assert naive_ca_sdri(*dirs)["CA-SDRi"] == pytest.approx(10 * math.log10(16), abs=1e-4)
    assert naive_ca_sdri(*dirs)["label_accuracy"] == 1.0


@pytest.mark.parametrize("writer", [write_analytic, write_random])
def test_naive_ca_sdri_agrees_with_the_scorer(tmp_path: Path, writer) -> None:
    dirs = writer(tmp_path)
    official = score_ca_sdri(*dirs)
    plain = naive_ca_sdri(*dirs)
    assert plain["n_soundscapes"] == official["n_soundscapes"] == 4
    assert plain["CA-SDRi"] == pytest.approx(official["CA-SDRi"], abs=1e-4)
    assert plain["label_accuracy"] == official["label_accuracy"] == 0.25


def test_compare_ca_sdri_times_both_and_reports_the_check(tmp_path: Path) -> None:
    dirs = write_random(tmp_path)
    comparison, agreement = compare_ca_sdri(*dirs, repeats=1, warmup=0)
    assert isinstance(comparison, Comparison)
    assert comparison.a_seconds > 0 and comparison.b_seconds > 0 and comparison.ratio > 0
    assert "4 soundscapes" in comparison.work and "WAV reading included" in comparison.work
    assert comparison.check.startswith("|ΔCA-SDRi| = ") and "label accuracy equal" in comparison.check
    assert agreement["ca_sdri_difference"] < 1e-4
    assert agreement["label_accuracy_equal"] == 1.0
    assert agreement["label_accuracy"] == 0.25


# ---------------------------------------------------------------------------------------------------------------
# Generator throughput, on a tiny embedded dataset

GENERATOR = {"sample_rate": 8000, "duration": 0.5}


@pytest.fixture(scope="module")
def s5_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("s5")
    embedded = {
        "clips_per_class": {"train": 1},
        "rooms_per_split": {"train": 1},
        "noise_per_split": {"train": 1},
        "min_seconds": 0.2,
        "max_seconds": 0.5,
        "noise_seconds": 1.0,
        "ir_seconds": 0.05,
    }
    make_embedded_banks(root, embedded, sample_rate=GENERATOR["sample_rate"], seed=0)
    return root


def test_generator_throughput_is_a_positive_figure(s5_root: Path) -> None:
    figure = generator_throughput(open_generator(s5_root, "train", GENERATOR), count=3, seed=0, repeats=1)
    assert isinstance(figure, Figure)
    assert figure.unit == "mixtures/s"
    assert figure.value > 0 and math.isfinite(figure.value)
    # The embedded rooms are first-order Ambisonics: 4 channels.
    for part in ("3 soundscapes", "8000 Hz", "0.5 s", "4 channels"):
        assert part in figure.meaning


def test_generator_throughput_needs_a_mixture(s5_root: Path) -> None:
    with pytest.raises(ValueError, match="count"):
        generator_throughput(open_generator(s5_root, "train", GENERATOR), count=0, seed=0)


def test_s5_rows_append_the_figure_and_the_comparison(s5_root: Path, tmp_path: Path) -> None:
    soundscapes, oracle, estimates = write_random(tmp_path)
    settings = {
        "root": s5_root,
        "generator": GENERATOR,
        "mixtures": 2,
        "seed": 0,
        "soundscapes": soundscapes,
        "oracle": oracle,
        "estimates": estimates,
    }
    report = BenchReport()
    _s5_rows(report, settings, repeats=1)
    assert [figure.name for figure in report.throughput] == ["S5 generator"]
    assert [comparison.name for comparison in report.comparisons] == ["CA-SDRi scorer"]
    with pytest.raises(ValueError, match="estimates"):
        _s5_rows(BenchReport(), {key: value for key, value in settings.items() if key != "estimates"}, repeats=1)


# ---------------------------------------------------------------------------------------------------------------
# The benchmark rule's plan


def test_benchmark_rule_plans_the_s5_branch_only_when_configured(tmp_path: Path) -> None:
    with_s5, without_s5 = tmp_path / "with", tmp_path / "without"
    config = tiny_config()
    write_config(without_s5, config)
    write_config(with_s5, {**config, "s5": default_config()["s5"]})
    planned = planned_jobs(run_snakemake(with_s5, "-n", "benchmark"))
    assert planned["benchmark"] == 1 and planned["s5_score"] == 1 and planned["s5_infer"] >= 1
    planned = planned_jobs(run_snakemake(without_s5, "-n", "benchmark"))
    assert planned["benchmark"] == 1 and not [rule for rule in planned if rule.startswith("s5")]
