"""DOAnet check: every recording, label row and a given Hnet checked before any DOAnet training (a cheap job)."""


rule doanet_check:
    input:
        dataset=doanet_dataset_inputs,
        hnet=doanet_given_hnet,
    output:
        report=f"{DOANET_DIR}/check.json",
    log:
        f"{DOANET_DIR}/logs/doanet_check.log",
    benchmark:
        f"{DOANET_DIR}/benchmarks/doanet_check.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        root=DOANET_ROOT,
        formats=DOANET_USED_FORMATS,
        splits=DOANET_SPLITS,
        n_max=DOANET["hnet"]["n_max"],
    script:
        "../workflow/scripts/doanet_check.py"
