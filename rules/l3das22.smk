"""L3DAS22 Task 2 adapter: the recordings of some dataset splits, from the user's unpacked tree at l3das22.root,
as a DCASE2021-style FOA split (clips in foa_dev, headerless frame,class,track,azimuth,elevation labels) that the
rest of the workflow uses like any other split.
"""

if AUDIO_FORMATS[FEATURE_KIND] != "foa":
    raise ValueError(
        f"l3das22 splits are first-order Ambisonics: features.kind {FEATURE_KIND!r} must read foa_dev"
    )


rule l3das22_split:
    input:
        root=L3DAS22["root"],
    output:
        audio=directory(f"{L3DAS22_ROOT}/foa_dev/{{split}}"),
        metadata=directory(f"{L3DAS22_ROOT}/metadata_dev/{{split}}"),
    log:
        f"{RESULTS}/logs/l3das22_split/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/l3das22_split/{{split}}.tsv"
    wildcard_constraints:
        split="|".join(re.escape(split) for split in L3DAS22_SPLITS) or "no-split",
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        dataset_splits=lookup(dpath="l3das22/splits/{split}", within=config),
        mic=L3DAS22.get("mic"),
        channel_order=L3DAS22.get("channel_order"),
        mic_offset_m=L3DAS22.get("mic_offset_m"),
        sample_rate=SAMPLE_RATE,
        clip_seconds=CLIP_SECONDS,
    script:
        "../workflow/scripts/l3das22_split.py"
