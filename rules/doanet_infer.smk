"""DOAnet inference: DCASE2020-style prediction CSVs of the test recordings (activity > 0.5, track = slot)."""


rule doanet_infer:
    input:
        checkpoint=rules.doanet_train.output.checkpoint,
        features=doanet_test_features,
    output:
        predictions=directory(f"{DOANET_DIR}/{{doanet_experiment}}/predictions"),
    log:
        f"{DOANET_DIR}/{{doanet_experiment}}/logs/doanet_infer.log",
    benchmark:
        f"{DOANET_DIR}/{{doanet_experiment}}/benchmarks/doanet_infer.tsv"
    conda:
        "../envs/torch.yaml"
    threads: all_cores()
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        infer=DOANET["infer"],
        device=lambda wildcards: doanet_settings(wildcards)["device"],
    script:
        "../workflow/scripts/doanet_infer.py"
