"""PSELDNets' synthetic pretraining data: a large-vocabulary sound bank (procedural, or FSD50K-style on disk), then
per subset (ov1/ov2/ov3) mixtures in shards, each mixture in its own random shoebox room, gathered into the released
DataSynthSELD layout. Only with a `pretraining` section; nothing else depends on it yet:

    snakemake --cores 2 pretrain_data                                     # every subset
    snakemake --cores 2 results/pretrain/shards/train40_ov1_1/0000        # one shard (one job of a cluster array)
"""

from seldflow.pretrain.synthesis import check_pretraining

PRETRAIN = config["pretraining"]
check_pretraining(PRETRAIN, source="config")
PRETRAIN_ROOT = PRETRAIN["root"]
PRETRAIN_SUBSETS = PRETRAIN["subsets"]
PRETRAIN_SHARDS_DIR = f"{RESULTS}/pretrain/shards"
# The procedural bank the pretrain_bank rule writes, or the user's folder of FSD50K-style trees.
PRETRAIN_BANK = PRETRAIN["bank"]["path"] or f"{RESULTS}/pretrain/bank"


def pretrain_subset_shards(subset):
    return shard_names(PRETRAIN_SUBSETS[subset]["clips"], PRETRAIN["shard_clips"])


def pretrain_shard(wildcards):
    # First clip and clip count of a shard; clip k's content depends only on (seed, fold, k).
    clips = shard_range(
        int(wildcards.shard),
        PRETRAIN["shard_clips"],
        PRETRAIN_SUBSETS[wildcards.subset]["clips"],
    )
    return {"first_clip": clips.start, "n_clips": len(clips)}


def pretrain_seed(wildcards):
    return stage_seed("pretraining", wildcards.subset)


def pretrain_bank_split(wildcards):
    return f"{PRETRAIN_BANK}/{PRETRAIN_SUBSETS[wildcards.subset]['source_split']}"


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
        shards=lambda wildcards: expand(
            rules.pretrain_synthesis.output.shard,
            subset=wildcards.subset,
            shard=pretrain_subset_shards(wildcards.subset),
        ),
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
