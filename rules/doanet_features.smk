"""DOAnet features: one file per audio format and split (train, validation, test, augmented), whole recordings."""


rule doanet_features:
    input:
        sources=doanet_split_inputs,
    output:
        h5=doanet_features_path("{fmt}", "{dsplit}"),
    log:
        f"{DOANET_DIR}/logs/doanet_features/{{fmt}}/{{dsplit}}.log",
    benchmark:
        f"{DOANET_DIR}/benchmarks/doanet_features/{{fmt}}/{{dsplit}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        root=doanet_split_source,
        features=DOANET["features"],
    script:
        "../workflow/scripts/doanet_features.py"
