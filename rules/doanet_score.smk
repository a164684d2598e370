"""DOAnet scoring: the doa-mot metric (official LE, MOTA, IDS, LR, LP, LF and CLEAR-MOT) of the test folds."""


rule doanet_score:
    input:
        predictions=rules.doanet_infer.output.predictions,
        check=f"{DOANET_DIR}/check.json",
        dataset=doanet_dataset_inputs,
    output:
        metrics=report(
            f"{DOANET_DIR}/{{doanet_experiment}}/metrics.json",
            caption="../workflow/report/doanet_metrics.rst",
            category="DOAnet",
        ),
    log:
        f"{DOANET_DIR}/{{doanet_experiment}}/logs/doanet_score.log",
    benchmark:
        f"{DOANET_DIR}/{{doanet_experiment}}/benchmarks/doanet_score.tsv"
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        root=DOANET_ROOT,
        fmt=lambda wildcards: doanet_settings(wildcards)["features"],
        doa_threshold=DOANET["score"]["doa_threshold_deg"],
        description=doanet_description,
    script:
        "../workflow/scripts/doanet_score.py"
