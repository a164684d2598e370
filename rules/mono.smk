"""AdapterBit's mono mode: single-source clips of the synthesis source bank as pseudo-FOA at random directions
(seldflow.mono), each split of the `mono` section written as a DCASE2021-style FOA split of its own name that the
features stage reads like any split. Experiments select them as their training data with train.mono_splits:

    snakemake --cores 2 results/mono/splits/metadata_dev/<split>
"""


rule mono_split:
    input:
        bank=source_bank(),
    output:
        audio=directory(f"{MONO_SPLITS_ROOT}/foa_dev/{{split}}"),
        metadata=directory(f"{MONO_SPLITS_ROOT}/metadata_dev/{{split}}"),
    log:
        f"{RESULTS}/logs/mono_split/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mono_split/{{split}}.tsv"
    wildcard_constraints:
        split="|".join(re.escape(split) for split in MONO_SPLITS),
    conda:
        "../envs/torch.yaml"  # seldflow.augment (the plane-wave encoding) imports PyTorch
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        split=lookup(dpath="mono/splits/{split}", within=config),
        clip_seconds=CLIP_SECONDS,
        sample_rate=SAMPLE_RATE,
        seed=mono_seed,
    script:
        "../workflow/scripts/mono_split.py"
