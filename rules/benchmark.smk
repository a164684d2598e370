"""Benchmark report: stage costs, throughput, metrics and timed comparisons, run only when asked for.

    make bench                                   # the workflow, then this rule (forced to rerun)
    snakemake --cores 2 benchmark                # or results/benchmark/benchmark.md

Nothing in the default workflow depends on it. The inputs are the workflow's final outputs, so it runs last and
finds every other rule's benchmark file written.
"""

BENCH_DIR = f"{RESULTS}/benchmark"
# The main experiment (config `experiment`) is the one benchmarked.
BENCH_EXPERIMENT_DIR = f"{RESULTS}/{EXPERIMENT}"
# The rule's own benchmark file: a benchmark of the benchmark, left out of the stage table it writes.
BENCH_SELF = f"{RESULTS}/benchmarks/benchmark.tsv"


rule benchmark:
    input:
        # Only with an `s5` section: s5_metrics, s5_estimates, s5_test, s5_banks.
        unpack(benchmark_s5_inputs),
        metrics=expand(rules.score.output.metrics, experiment=EXPERIMENT),
        plots=expand(rules.report.output, experiment=EXPERIMENT),
        features=[features_path(split) for split in ALL_SPLITS],
        audio=[audio_dir(split) for split in ALL_SPLITS],
        # The PFOA comparison reads stereo clips whatever the configured feature kind.
        stereo=f"{DATASET_ROOT}/stereo_dev/{TEST_SPLITS[0]}",
    output:
        markdown=f"{BENCH_DIR}/benchmark.md",
        table=f"{BENCH_DIR}/benchmark.csv",
    log:
        f"{RESULTS}/logs/benchmark.log",
    benchmark:
        BENCH_SELF
    conda:
        "../envs/benchmark.yaml"
    threads: all_cores()
    resources:
        mem_mb=4000,
        # The scorer rows score 10,000 clips per metric with the official scorers' plain loops (minutes each).
        runtime=120,
    params:
        experiment=EXPERIMENT,
        # The no-op dry run the report times uses this workflow's own Snakefile.
        snakefile=workflow.main_snakefile,
        benchmark_dirs=[
            f"{RESULTS}/benchmarks",
            f"{BENCH_EXPERIMENT_DIR}/benchmarks",
            *BENCH_S5_DIRS,
        ],
        own_benchmark=BENCH_SELF,
        splits=ALL_SPLITS,
        test_splits=TEST_SPLITS,
        features=config["features"],
        sample_rate=SAMPLE_RATE,
        # Sizes of the timed comparisons (config `bench`).
        feature_clips=config["bench"]["feature_clips"],
        feature_jobs=config["bench"]["feature_jobs"],
        # Two training jobs one after the other, then side by side (the demo's network, batch and input shape).
        training_job={
            "model": config["train"]["model"],
            "channels": FEATURE_KINDS[FEATURE_KIND].output_channels,
            "frames": feature_frames(CLIP_SAMPLES, config["features"]["hop_length"]),
            "mels": config["features"]["n_mels"],
            "batch": config["train"]["batch_size"],
            "steps": config["bench"]["concurrency_steps"],
        },
        spin_count=config["runtime"]["openmp_spin_count"],
        repeats=config["bench"]["repeats"],
        decoder=config["bench"]["decoder"],
        # One row per metric: seldflow's scorer against its official scorer restated, on synthetic label
        # folders sized by the config (`bench.scorers`).
        scorers={**config["bench"]["scorers"], "seed": stage_seed("bench", "scorers")},
        # Generator throughput and CA-SDRi scorer vs loop (the DCASE2025 Task 4 branch), when it is configured.
        s5=benchmark_s5_params(),
        # A shard of pretraining mixtures against the single-room renderer, with a `pretraining` section.
        pretrain=benchmark_pretrain_params(),
    script:
        "../workflow/scripts/benchmark.py"
