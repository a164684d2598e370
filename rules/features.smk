"""Features: a split checked as a whole, extracted in shards of clips, joined by a virtual-dataset index.

split_check is a checkpoint: the number of shard jobs follows from the clips it finds, and a folder with missing,
extra or malformed files (audio headers and label contents) fails there, naming them, before any feature work
starts. Its `signature` parameter (sizes and modification times of the split's files) reruns it when any file is
added, removed or edited in place. Each shard depends on the manifest only through its own files' signatures
(`ancient` input plus `signature` parameter), so an edited file reruns the one shard that holds it.
"""


checkpoint split_check:
    input:
        unpack(split_sources),
    output:
        clips=f"{FEATURES_DIR}/{{split}}/clips.txt",
    log:
        f"{RESULTS}/logs/split_check/{FEATURE_KIND}/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/split_check/{FEATURE_KIND}/{{split}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        folders=split_folder_params,
        kind=FEATURE_KIND,
        sample_rate=SAMPLE_RATE,
        clip_samples=split_clip_samples,
        labels=split_labels,
        signature=split_signature,
    script:
        "../workflow/scripts/split_check.py"


rule features:
    input:
        clips=ancient(rules.split_check.output.clips),
    output:
        h5=f"{FEATURES_DIR}/{{split}}/shard-{{shard}}.h5",
    log:
        f"{RESULTS}/logs/features/{FEATURE_KIND}/{{split}}/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/features/{FEATURE_KIND}/{{split}}/{{shard}}.tsv"
    conda:
        "../envs/torch.yaml"
    # One thread a shard, shards side by side: a feature job's torch work comes in cache-sized blocks too small to
    # split, and a second OpenMP thread spinning between them made it three times slower (seldflow.spectral).
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        folders=split_folder_params,
        shard=shard_index,
        shard_clips=SHARD_CLIPS,
        features=feature_params,
        lr_swap=lr_swap,
        sample_rate=SAMPLE_RATE,
        clip_samples=split_clip_samples,
        labels=split_labels,
        signature=shard_signature,
    script:
        "../workflow/scripts/features.py"


rule feature_index:
    input:
        shards=split_shards,
    output:
        h5=features_path("{split}"),
    log:
        f"{RESULTS}/logs/feature_index/{FEATURE_KIND}/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/feature_index/{FEATURE_KIND}/{{split}}.tsv"
    localrule: True
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../workflow/scripts/feature_index.py"
