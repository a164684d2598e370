"""Scoring: the official DCASE2025 metric over every test split, written as one JSON object."""


rule score:
    input:
        predictions=expand(f"{EXPERIMENT_DIR}/predictions/{{split}}", split=TEST_SPLITS),
        references=[metadata_dir(split) for split in TEST_SPLITS],
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
    script:
        "../workflow/scripts/score.py"
