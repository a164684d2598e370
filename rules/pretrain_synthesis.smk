"""PSELDNets' synthetic pretraining data: a large-vocabulary sound bank (procedural, or FSD50K-style on disk), then
per subset (ov1/ov2/ov3) mixtures in shards, each mixture in its own random shoebox room, gathered into the released
DataSynthSELD layout. Only with a `pretraining` section. Pretraining experiments (train.pretraining_subsets) read
their subsets through rule pretrain_export, and fine-tuning experiments (train.pretrained_from) their checkpoints:

    snakemake --cores 2 pretrain_data                                     # every subset
    snakemake --cores 2 results/pretrain/shards/train40_ov1_1/0000        # one shard (one job of a cluster array)
"""


wildcard_constraints:
    subset="|".join(re.escape(name) for name in PRETRAIN_SUBSETS),


rule pretrain_bank:
    output:
        bank=directory(f"{RESULTS}/pretrain/bank"),
    log:
        f"{RESULTS}/logs/pretrain_bank.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_bank.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        bank=PRETRAIN["bank"],
        sample_rate=PRETRAIN["sample_rate"],
        seed=stage_seed("pretraining", "bank"),
    script:
        "../workflow/scripts/pretrain_bank.py"


rule pretrain_synthesis:
    input:
        bank=PRETRAIN_BANK,
    output:
        shard=directory(f"{PRETRAIN_SHARDS_DIR}/{{subset}}/{{shard}}"),
    log:
        f"{RESULTS}/logs/pretrain_synthesis/{{subset}}/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_synthesis/{{subset}}/{{shard}}.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        bank_split=pretrain_bank_split,
        subset=lookup(dpath="pretraining/subsets/{subset}", within=config),
        shard=pretrain_shard,
        seed=pretrain_seed,
        settings=PRETRAIN,
    script:
        "../workflow/scripts/pretrain_synthesis.py"


# The released layout of a subset: the shards' files hard-linked side by side, their class counts summed.
rule pretrain_subset:
    input:
        shards=pretrain_shard_dirs,
    output:
        subset=directory(f"{PRETRAIN_ROOT}/{{subset}}"),
    log:
        f"{RESULTS}/logs/pretrain_subset/{{subset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_subset/{{subset}}.tsv"
    localrule: True
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    script:
        "../workflow/scripts/pretrain_gather.py"


# A subset as a DCASE2021-style split of its own name (the audio format the features read, and the labels), so the
# features stage and pretraining experiments (train.pretraining_subsets) read it like any split.
rule pretrain_export:
    input:
        subset=rules.pretrain_subset.output.subset,
    output:
        audio=directory(
            f"{PRETRAIN_SPLITS_ROOT}/{AUDIO_FORMATS[FEATURE_KIND]}_dev/{{subset}}"
        ),
        metadata=directory(f"{PRETRAIN_SPLITS_ROOT}/metadata_dev/{{subset}}"),
    log:
        f"{RESULTS}/logs/pretrain_export/{{subset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_export/{{subset}}.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        audio_format=AUDIO_FORMATS[FEATURE_KIND],
    script:
        "../workflow/scripts/pretrain_export.py"
