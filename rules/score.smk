"""Scoring: the experiment's official metric (DCASE2021-2025) over every test split, written as one JSON object."""


rule score:
    input:
        predictions=expand(
            f"{EXPERIMENT_DIR}/predictions/{{split}}",
            split=TEST_SPLITS,
            allow_missing=True,
        ),
        references=reference_inputs(TEST_SPLITS),
    output:
        metrics=report(
            f"{EXPERIMENT_DIR}/metrics.json",
            caption="../workflow/report/metrics.rst",
            category="Scores",
        ),
    log:
        f"{EXPERIMENT_DIR}/logs/score.log",
    benchmark:
        f"{EXPERIMENT_DIR}/benchmarks/score.tsv"
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        score=config["score"],
        task=experiment_task_spec,
        references=[metadata_dir(split) for split in TEST_SPLITS],
    script:
        "../workflow/scripts/score.py"


rule summary:
    input:
        metrics=expand(rules.score.output.metrics, experiment=RUN_EXPERIMENTS),
    output:
        table=report(
            f"{RESULTS}/experiments/{config['summary']}.csv",
            caption="../workflow/report/summary.rst",
            category="Experiments",
        ),
    log:
        f"{RESULTS}/logs/summary/{config['summary']}.log",
    benchmark:
        f"{RESULTS}/benchmarks/summary/{config['summary']}.tsv"
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        experiments=RUN_EXPERIMENTS,
        models=[train_settings(name)["model"] for name in RUN_EXPERIMENTS],
    script:
        "../workflow/scripts/summary.py"
