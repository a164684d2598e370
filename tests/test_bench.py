"""Tests of the benchmark pieces on tiny inputs: parsing, the plain reference implementations, the table writer.

No timing is asserted here: speed and memory figures belong to ``make bench``'s report.
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seldflow.bench.decoders import compare_decoders
from seldflow.bench.feature_jobs import feature_job_memory, job_figures, peaks_at
from seldflow.bench.features import (
    compare_features,
    feature_settings,
    four_channel,
    naive_foa_logmel_iv,
    naive_mic_logmel_gcc,
    naive_pfoa,
)
from seldflow.bench.input_pipeline import input_pipeline_rows
from seldflow.bench.memory import epoch_peak_in_child, training_memory
from seldflow.bench.outputs import throughput
from seldflow.bench.records import BenchReport, Comparison, Figure, StageTiming
from seldflow.bench.report import render_markdown, write_report
from seldflow.bench.scorer import metric_difference, naive_metrics
from seldflow.bench.stages import collect_stage_timings, read_benchmark_tsv, stage_totals
from seldflow.bench.timing import median_times
from seldflow.feature_kinds import foa_logmel_iv, mic_logmel_gcc, pfoa
from seldflow.labels import SAMPLE_RATE
from seldflow.metrics.dcase2025 import compute_metrics

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_tsv(path: Path, *rows: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(row + "\n" for row in rows))
    return path


def test_read_benchmark_tsv_single_and_repeated_rows(tmp_path: Path) -> None:
    one = write_tsv(tmp_path / "one.tsv", "3.61\t0:00:03\t412.78\t1193.12\t392.09\t401.91\t180.70\t49.46\t106.29\t4.42")
    assert read_benchmark_tsv(one) == {"s": 3.61, "cpu_time": 4.42, "max_rss": 412.78, "repeats": 1.0}
    two = write_tsv(
        tmp_path / "two.tsv",
        "2.0\t0:00:02\t100.0\t1\t1\t1\t1\t1\t1\t1.0",
        "4.0\t0:00:04\t300.0\t1\t1\t1\t1\t1\t1\t3.0",
    )
    assert read_benchmark_tsv(two) == {"s": 3.0, "cpu_time": 2.0, "max_rss": 300.0, "repeats": 2.0}


def test_read_benchmark_tsv_na_cells_are_nan(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "na.tsv", "0.01\t0:00:00\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA")
    values = read_benchmark_tsv(path)
    assert values["s"] == 0.01
    assert math.isnan(values["max_rss"]) and math.isnan(values["cpu_time"])


def test_read_benchmark_tsv_without_rows_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.tsv"
    path.write_text(HEADER)
    with pytest.raises(ValueError, match="no data row"):
        read_benchmark_tsv(path)


def test_collect_stage_timings_names_stages_and_skips_excluded(tmp_path: Path) -> None:
    row = "1.0\t0:00:01\t10.0\t1\t1\t1\t1\t1\t1\t{cpu}"
    common, experiment = tmp_path / "benchmarks", tmp_path / "demo" / "benchmarks"
    write_tsv(common / "room" / "room1.tsv", row.format(cpu=1.0))
    write_tsv(common / "room" / "room2.tsv", "2.0\t0:00:02\t30.0\t1\t1\t1\t1\t1\t1\t1.5")
    write_tsv(common / "source_bank.tsv", row.format(cpu=0.5))
    own = write_tsv(common / "benchmark.tsv", row.format(cpu=9.0))
    write_tsv(experiment / "train.tsv", row.format(cpu=1.8))
    timings = collect_stage_timings([common, experiment, tmp_path / "missing"], exclude=[own])
    assert [(t.stage, t.job) for t in timings] == [
        ("room", "room/room1"),
        ("room", "room/room2"),
        ("source_bank", "source_bank"),
        ("train", "train"),
    ]
    totals = {t.stage: t for t in stage_totals(timings)}
    assert list(totals) == ["source_bank", "room", "train"]  # workflow order
    assert totals["room"] == StageTiming("room", "2 jobs", 3.0, 2.5, 30.0)


def test_throughput_counts_clips_from_outputs(tmp_path: Path) -> None:
    import h5py

    wavs = tmp_path / "stereo" / "test"
    wavs.mkdir(parents=True)
    for i in range(4):
        (wavs / f"clip{i}.wav").write_bytes(b"")
    h5_path = tmp_path / "test.h5"
    with h5py.File(h5_path, "w") as h5:
        h5.create_dataset(
            "clips", data=np.array(["a", "a_LRswap", "b", "b_LRswap"], dtype=object), dtype=h5py.string_dtype()
        )
        h5.attrs["sample_rate"] = 24000
        h5.attrs["config"] = '{"clip_samples": 120000}'
    timings = [  # shard jobs of the split are summed; another split's jobs are not counted
        StageTiming("mixtures", "mixtures/test/0000", 1.5, 1.0, 1.0),
        StageTiming("mixtures", "mixtures/test/0001", 0.5, 1.0, 1.0),
        StageTiming("mixtures", "mixtures/test-other/0000", 9.0, 1.0, 1.0),
        StageTiming("features", "features/pfoa/test/0000", 0.25, 1.0, 1.0),
        StageTiming("features", "features/pfoa/test/0001", 0.25, 1.0, 1.0),
        StageTiming("features", "features/pfoa/test-other/0000", 9.0, 1.0, 1.0),
        StageTiming("infer", "infer/test", 1.0, 1.0, 1.0),
    ]
    figures = {
        f.name: f.value
        for f in throughput(timings, audio_dirs={"test": wavs}, feature_files={"test": h5_path}, test_splits=["test"])
    }
    assert figures == {"synthesis test": 2.0, "features test": 8.0, "inference RTF test": 0.1}


def stereo_noise(seconds: float = 0.4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(24000 * seconds)
    source = rng.standard_normal(n).astype(np.float32)
    left = 0.8 * source + 0.05 * rng.standard_normal(n).astype(np.float32)
    return np.stack([left, 0.3 * source]) * 0.5


def test_naive_pfoa_matches_pfoa() -> None:
    audio = stereo_noise()
    expected = pfoa(audio)
    result = naive_pfoa(audio)
    assert result.shape == expected.shape == (7, 1 + audio.shape[1] // 480, 64)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, atol=2e-3, rtol=0)
    np.testing.assert_allclose(result[:4], expected[:4], atol=1e-4, rtol=0)  # log10 mel


def test_naive_pfoa_other_parameters_and_silence() -> None:
    audio = stereo_noise(0.2, seed=1)
    params = {"n_fft": 512, "win_length": 400, "hop_length": 240, "n_mels": 32}
    np.testing.assert_allclose(naive_pfoa(audio, **params), pfoa(audio, **params), atol=2e-3, rtol=0)
    silent = np.zeros((2, 4800), dtype=np.float32)
    np.testing.assert_allclose(naive_pfoa(silent), pfoa(silent), atol=1e-5, rtol=0)  # floor, zero intensity
    with pytest.raises(ValueError, match="stereo"):
        naive_pfoa(np.zeros((1, 100)))


def rows(*events: tuple[int, int, int, int, int, int]) -> np.ndarray:
    return np.array(events, dtype=np.int64).reshape(-1, 6)


def hand_made_labels() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Hits, a spatial miss, a distance miss, swapped same-class tracks, extra and missed tracks, the last frame."""
    references = {
        "a": rows(
            (0, 0, 0, 10, 200, 1),
            (1, 0, 0, 12, 200, 1),
            (1, 3, 0, -40, 150, 0),
            (2, 3, 0, -40, 150, 0),
            (2, 3, 1, 60, 300, 1),
            (3, 5, 0, 170, 100, 0),  # rear azimuth folds to 10
            (4, 5, 0, 170, 100, 0),
            (5, 7, 0, 0, 100, 0),  # last annotated frame: never scored
        ),
        "b": rows((0, 1, 0, 30, 100, 1), (1, 1, 0, 30, 100, 1), (3, 2, 0, -80, 400, 0)),
        "empty": rows(),
        "unpredicted": rows((0, 4, 0, 0, 100, 1), (2, 4, 0, 0, 100, 1)),
    }
    predictions = {
        "a": rows(
            (0, 0, 0, 15, 210, 1),
            (1, 0, 0, 50, 200, 1),  # 38° off: spatial FP
            (1, 3, 0, -40, 400, 0),  # relative distance 1.67: spatial FP
            (2, 3, 0, 58, 300, 1),  # two tracks, file order swapped
            (2, 3, 1, -38, 150, 0),
            (3, 5, 0, 12, 100, 0),
            (3, 5, 1, 80, 100, 0),  # extra same-class track: FP
            (4, 9, 0, 0, 100, 0),  # wrong class: FP, and FN of class 5
            (5, 7, 0, 0, 100, 0),
            (60, 7, 0, 0, 100, 0),  # beyond the scored frames
        ),
        "b": rows((0, 1, 0, -150, 100, 1), (2, 1, 0, 30, 100, 1)),
        "empty": rows((0, 6, 0, 0, 100, 0)),
    }
    return references, predictions


def test_naive_metrics_equals_compute_metrics_on_hand_made_labels() -> None:
    references, predictions = hand_made_labels()
    expected = compute_metrics(references, predictions, missing="empty")
    result = naive_metrics(references, predictions)
    assert metric_difference(expected, result) < 1e-12
    for name in ("TP", "FP", "FP_spatial", "FN"):
        assert result[name] == expected[name], name
    assert result["TP"] > 0 and result["FP_spatial"] > 0  # the labels exercise both outcomes


def test_naive_metrics_thresholds_and_no_pairs() -> None:
    references, predictions = hand_made_labels()
    for thresholds in ({"doa_threshold": 5.0}, {"reldist_threshold": 2.0}, {"dist_threshold": 5.0}):
        expected = compute_metrics(references, predictions, missing="empty", **thresholds)
        assert metric_difference(expected, naive_metrics(references, predictions, **thresholds)) < 1e-12
    nothing = naive_metrics({"a": rows((0, 0, 0, 0, 100, 0), (1, 0, 0, 0, 100, 0))}, {"a": rows()})
    assert nothing["F"] == 0.0 and math.isnan(nothing["DOAE"])


@pytest.mark.parametrize(
    ("naive", "fast", "channels"),
    [(naive_foa_logmel_iv, foa_logmel_iv, 7), (naive_mic_logmel_gcc, mic_logmel_gcc, 10)],
)
def test_plain_four_channel_features_match_seldflows(naive, fast, channels: int) -> None:
    audio = four_channel(stereo_noise(0.3, seed=2))
    expected = fast(audio)
    result = naive(audio)
    assert result.shape == expected.shape == (channels, 1 + audio.shape[1] // 240, 64)
    np.testing.assert_allclose(result[:4], expected[:4], atol=1e-3, rtol=0)  # dB mel power
    np.testing.assert_allclose(result[4:], expected[4:], atol=2e-3, rtol=0)  # intensity or GCC-PHAT
    # A wave reaching microphone 2 five samples after microphone 1 peaks at lag -5 in both (pair (0, 1)).
    source = np.random.default_rng(3).standard_normal(7200).astype(np.float32)
    delayed = np.stack([source, np.roll(source, 5), source, source])
    lags = [np.argmax(f(delayed, n_mels=32)[4].mean(axis=0)) - 16 for f in (naive_mic_logmel_gcc, mic_logmel_gcc)]
    assert lags == [-5, -5]
    with pytest.raises(ValueError, match="4, samples"):
        naive(np.zeros((2, 100)))


def test_metric_difference() -> None:
    a = {"F": 0.5, "DOAE": math.nan, "DistE": 1.0, "RDE": 0.1, "classwise_F": [0.5, 0.25]}
    assert metric_difference(a, dict(a)) == 0.0
    assert metric_difference(a, {**a, "classwise_F": [0.5, 0.5]}) == 0.25
    assert metric_difference(a, {**a, "DOAE": 3.0}) == math.inf


def test_comparisons_run_on_tiny_inputs() -> None:
    threads = torch.get_num_threads()
    for kind, clip in (("pfoa", stereo_noise(0.2)), ("mic", four_channel(stereo_noise(0.2)))):
        comparison, diff = compare_features(kind, [clip], repeats=1, warmup=0)
        assert comparison.a_seconds > 0 and comparison.b_seconds > 0 and diff < 2e-3
        assert "per core" in comparison.work and comparison.name == f"{kind.upper()} features"
    assert torch.get_num_threads() == threads  # the one-thread limit is lifted afterwards
    with pytest.raises(ValueError, match="no plain reference"):
        compare_features("logmel", [stereo_noise(0.2)])
    decoders = compare_decoders(d_model=64, length=8, batch=2, repeats=1, warmup=0)
    assert decoders.a_label.startswith("BiMamba") and decoders.b_label.startswith("Conformer")
    assert decoders.a_seconds > 0 and decoders.b_seconds > 0


def test_feature_jobs_run_each_side_in_a_fresh_process(tmp_path: Path) -> None:
    clip = four_channel(stereo_noise(5.0))  # a whole 5-s clip: the feature job checks the clip length
    settings = feature_settings("mic", sample_rate=SAMPLE_RATE)
    runs = feature_job_memory(tmp_path, {"mic": [clip]}, {"mic": settings}, sizes=[2])
    assert [(run.side, run.kind, run.clips) for run in runs] == [("plain", "mic", 2), ("seldflow", "mic", 2)]
    assert all(run.seconds > 0 and run.peak_rss_mb > 100 for run in runs)  # imports included
    assert all(run.after_warm_up for run in runs)  # both sides ran a clip before the peak started afresh
    assert "after both sides ran one clip" in job_figures(runs)[0].meaning
    assert peaks_at(runs, "mic", 2) == (runs[0].peak_rss_mb, runs[1].peak_rss_mb)
    assert [figure.name for figure in job_figures(runs)] == [
        "mic features, 2 clips, plain per-file script",
        "mic features, 2 clips, seldflow feature job",
    ]
    assert list(tmp_path.iterdir()) == []  # the clip folders and outputs are removed
    with pytest.raises(RuntimeError, match="feature_child failed"):  # stereo clips for a 4-channel kind
        feature_job_memory(tmp_path, {"mic": [stereo_noise(5.0)]}, {"mic": settings}, sizes=[1])


def test_input_pipeline_rows_time_the_store_against_the_step(tmp_path: Path) -> None:
    comparison, figures = input_pipeline_rows(
        tmp_path, clips=8, batch=4, shape=(7, 11, 16), step_seconds=0.5, threads=2
    )
    assert comparison.a_seconds == 0.5 and comparison.b_seconds > 0
    assert [figure.name for figure in figures] == ["clip store, streamed", "clip store, in memory", "training step"]
    assert figures[2].value == pytest.approx(8.0)  # 4 clips per 0.5-s step
    assert all(figure.value > 0 and figure.unit == "samples/s" for figure in figures)
    assert list(tmp_path.iterdir()) == []


def test_median_times_interleaves_and_takes_medians() -> None:
    calls: list[str] = []
    result = median_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert set(result) == {"a", "b"} and all(v >= 0 for v in result.values())
    with pytest.raises(ValueError, match="repeats"):
        median_times({"a": lambda: None}, repeats=0)


def sample_report() -> BenchReport:
    return BenchReport(
        title="test bench",
        environment={"git commit": "abc123", "CPU": "Some | CPU"},
        stages=[StageTiming("train", "train", 100.0, 190.0, 1500.0), StageTiming("score", "score", 1.0, 0.5, math.nan)],
        throughput=[Figure("features test", 25.0, "clips/s", "100 clips in 4.0 s")],
        metrics=[Figure("F", 0.537, "", "macro F")],
        comparisons=[
            Comparison("scorer", "100 clips", "loop", 0.5, "vectorised", 0.005, "speed-up of the vectorised scorer"),
            Comparison("decoders", "fwd+bwd", "BiMamba", 6.0, "Conformer", 4.0, "BiMamba / Conformer", "ok"),
        ],
        notes=["a note"],
    )


def test_render_markdown_tables() -> None:
    text = render_markdown(sample_report())
    assert text.startswith("# test bench\n")
    for heading in ("## Comparisons", "## Throughput", "## Model metrics", "## Stages", "## Environment", "## Notes"):
        assert heading in text
    assert (
        "| scorer | 100 clips | loop | 500.0 ms | vectorised | 5.0 ms | **100×** | speed-up of the vectorised scorer |"
        in text
    )
    assert "**1.50×**" in text
    assert "| train | 1 job | 100 | 190 | 1.90 | 1,500 |" in text
    assert "| score | 1 job | 1.00 | 0.5 | 0.5 | n/a |" in text
    assert "Some \\| CPU" in text  # a pipe inside a cell is escaped
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|")


def test_write_report_writes_markdown_and_csv(tmp_path: Path) -> None:
    report = sample_report()
    markdown, table = tmp_path / "out" / "benchmark.md", tmp_path / "out" / "benchmark.csv"
    write_report(report, markdown, table)
    assert markdown.read_text() == render_markdown(report)
    with table.open(newline="") as handle:
        data = list(csv.DictReader(handle))
    assert set(data[0]) == {"section", "item", "metric", "value", "unit", "note"}
    ratios = {row["item"]: float(row["value"]) for row in data if row["metric"] == "ratio_a_over_b"}
    assert ratios == {"scorer": pytest.approx(100.0), "decoders": pytest.approx(1.5)}
    assert {
        "section": "environment",
        "item": "git commit",
        "metric": "value",
        "value": "abc123",
        "unit": "",
        "note": "",
    } in data
    wall = [row for row in data if row["section"] == "stage" and row["metric"] == "wall"]
    assert [float(row["value"]) for row in wall] == [100.0, 1.0]


def test_streamed_training_memory_does_not_grow_with_the_dataset(tmp_path: Path) -> None:
    """Tiny clips so the test is quick: four times the clips, the streamed epoch's peak stays put (one batch plus
    the chunk cache), while the in-memory store grows by at least the extra data."""
    shape = (7, 251, 64)  # 0.45 MB per clip: 64 clips 29 MB, 256 clips 115 MB
    figures = {f.name: f.value for f in training_memory(tmp_path, sizes=(64, 256), shard_clips=32, shape=shape)}
    small, large = figures["training epoch, 64 clips, streamed"], figures["training epoch, 256 clips, streamed"]
    assert large - small < 25.0
    grown = figures["training epoch, 256 clips, in memory"] - figures["training epoch, 64 clips, in memory"]
    assert grown > 60.0
    assert not list(tmp_path.iterdir())


def test_training_memory_runs_from_an_unguarded_script(tmp_path: Path) -> None:
    """A rule's script has no ``if __name__ == "__main__"`` guard (Snakemake runs it top to bottom), and a ``spawn``
    child re-runs the parent's main module: measuring must not start children that way, or it never finishes."""
    script = tmp_path / "rule_script.py"
    script.write_text(
        "import sys\n"
        "from seldflow.bench.memory import training_memory\n"
        f"figures = training_memory({str(tmp_path / 'work')!r}, sizes=(8,), shard_clips=4, shape=(1, 11, 4))\n"
        "print(len(figures), *(f.value > 0 for f in figures))\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "True", "True"]


def test_a_failing_memory_child_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"seldflow\.bench\.memory_child failed on .*missing\.h5 4 0 \(exit 1\)"):
        epoch_peak_in_child(tmp_path / "missing.h5", 4, 0)
