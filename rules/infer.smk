"""Inference: DCASE2025 CSVs (one per clip, header-only when nothing is detected) for each test split."""


rule infer:
    input:
        checkpoint=rules.train.output.checkpoint,
        features=split_features,
    output:
        predictions=directory(f"{EXPERIMENT_DIR}/predictions/{{split}}"),
    log:
        f"{EXPERIMENT_DIR}/logs/infer/{{split}}.log",
    benchmark:
        f"{EXPERIMENT_DIR}/benchmarks/infer/{{split}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=30,
        gpu=1,
    params:
        infer=config["infer"],
        device=experiment_device,
    script:
        "../workflow/scripts/infer.py"
