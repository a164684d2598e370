"""DOAnet report: reference vs predicted DOA tracks of a few test recordings and the training curves of each
experiment, and the table that ranks the run experiments (results/doanet/summary.csv).
"""


rule doanet_report:
    input:
        predictions=rules.doanet_infer.output.predictions,
        metrics=rules.doanet_score.output.metrics,
        training=rules.doanet_train.output.metrics,
        dataset=doanet_dataset_inputs,
    output:
        tracks=report(
            f"{DOANET_DIR}/{{doanet_experiment}}/report/doa_tracks.png",
            caption="../workflow/report/doanet_report.rst",
            category="DOAnet",
        ),
        training=report(
            f"{DOANET_DIR}/{{doanet_experiment}}/report/training.png",
            caption="../workflow/report/doanet_report.rst",
            category="DOAnet",
        ),
    log:
        f"{DOANET_DIR}/{{doanet_experiment}}/logs/doanet_report.log",
    benchmark:
        f"{DOANET_DIR}/{{doanet_experiment}}/benchmarks/doanet_report.tsv"
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        root=DOANET_ROOT,
        fmt=lambda wildcards: doanet_settings(wildcards)["features"],
        clips=DOANET["report"]["clips"],
        description=doanet_description,
    script:
        "../workflow/scripts/doanet_report.py"


rule doanet_summary:
    input:
        metrics=expand(rules.doanet_score.output.metrics, doanet_experiment=DOANET_RUN),
    output:
        table=report(
            f"{DOANET_DIR}/summary.csv",
            caption="../workflow/report/doanet_summary.rst",
            category="DOAnet",
        ),
    log:
        f"{DOANET_DIR}/logs/doanet_summary.log",
    benchmark:
        f"{DOANET_DIR}/benchmarks/doanet_summary.tsv"
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        experiments=DOANET_RUN,
        models=[
            doanet_describe(doanet_experiment_settings(DOANET, name))
            for name in DOANET_RUN
        ],
    script:
        "../workflow/scripts/summary.py"
