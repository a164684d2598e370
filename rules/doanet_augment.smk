"""DOAnet overlap augmentation: 2-source mixes of single-source training scenes, per audio format."""


rule doanet_augment:
    input:
        check=f"{DOANET_DIR}/check.json",
        dataset=doanet_dataset_inputs,
    output:
        audio=directory(str(audio_folder(doanet_augmented_root("{fmt}"), "{fmt}"))),
        metadata=directory(str(metadata_folder(doanet_augmented_root("{fmt}")))),
    log:
        f"{DOANET_DIR}/logs/doanet_augment/{{fmt}}.log",
    benchmark:
        f"{DOANET_DIR}/benchmarks/doanet_augment/{{fmt}}.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        root=DOANET_ROOT,
        out_root=lambda wildcards: doanet_augmented_root(wildcards.fmt),
        multiplier=DOANET["augment"]["multiplier"],
    script:
        "../workflow/scripts/doanet_augment.py"
