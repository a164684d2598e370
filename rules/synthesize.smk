"""Synthetic datasets: a sound bank (procedural, or a real one on disk), SOFA rooms (simulated, converted from
measured databases, or ready files) and FOA + stereo mixtures rendered in shards by the configured backend.
"""


rule source_bank:
    output:
        bank=directory(f"{RESULTS}/synthetic/sources"),
    log:
        f"{RESULTS}/logs/source_bank.log",
    benchmark:
        f"{RESULTS}/benchmarks/source_bank.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        bank=SYNTH.get("source_bank"),
        sample_rate=SAMPLE_RATE,
        seed=stage_seed("source_bank"),
    script:
        "../workflow/scripts/source_bank.py"


rule room:
    output:
        sofa=f"{RESULTS}/synthetic/rooms/{{room}}_foa.sofa",
    log:
        f"{RESULTS}/logs/room/{{room}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/room/{{room}}.tsv"
    wildcard_constraints:
        room="|".join(SIMULATED_ROOMS) or "no-room",
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        spec=lookup(dpath="synthesis/rooms/specs/{room}", within=config),
        grid=SYNTH.get("rooms"),
        sample_rate=SAMPLE_RATE,
    script:
        "../workflow/scripts/room.py"


# TAU-SRIR DB / METU SPARG rooms in the SOFA layout, positions along the measured trajectories.
rule measured_room:
    input:
        # The download marker: the converter finds the database folder next to it.
        dataset=measured_room_download,
    output:
        sofa=f"{RESULTS}/synthetic/rooms/{{room}}_foa.sofa",
    log:
        f"{RESULTS}/logs/measured_room/{{room}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/measured_room/{{room}}.tsv"
    wildcard_constraints:
        room="|".join(MEASURED_ROOMS) or "no-room",
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        source=lookup(dpath="synthesis/rooms/measured/{room}/source", within=config),
        room=lookup(dpath="synthesis/rooms/measured/{room}/room", within=config),
        fmt="foa",
        sample_rate=SAMPLE_RATE,
    script:
        "../workflow/scripts/measured_room.py"


rule mixtures:
    input:
        bank=source_bank(),
        rooms=split_rooms,
    output:
        stereo=directory(f"{RESULTS}/synthetic/shards/{{split}}/{{shard}}/stereo"),
        foa=directory(f"{RESULTS}/synthetic/shards/{{split}}/{{shard}}/foa"),
        metadata=directory(f"{RESULTS}/synthetic/shards/{{split}}/{{shard}}/metadata"),
    log:
        f"{RESULTS}/logs/mixtures/{{split}}/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mixtures/{{split}}/{{shard}}.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        split=lookup(dpath="synthesis/splits/{split}", within=config),
        shard=mixture_shard,
        mixtures=SYNTH.get("mixtures"),
        clip_seconds=CLIP_SECONDS,
        room_ids=split_room_ids,
        sample_rate=SAMPLE_RATE,
        seed=mixture_seed,
        backend=SYNTH.get("backend"),
        label_format=config["dataset"]["label_format"],
    script:
        "../workflow/scripts/mixtures.py"


# The DCASE2025 tree of a rendered split: the shards' files hard-linked side by side (no copies).
rule synthetic_split:
    input:
        stereo=lambda wildcards: mixture_shard_dirs(wildcards, "stereo"),
        foa=lambda wildcards: mixture_shard_dirs(wildcards, "foa"),
        metadata=lambda wildcards: mixture_shard_dirs(wildcards, "metadata"),
    output:
        stereo=directory(f"{DATASET_ROOT}/stereo_dev/{{split}}"),
        foa=directory(f"{DATASET_ROOT}/foa_dev/{{split}}"),
        metadata=directory(f"{DATASET_ROOT}/metadata_dev/{{split}}"),
    log:
        f"{RESULTS}/logs/synthetic_split/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/synthetic_split/{{split}}.tsv"
    localrule: True
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    script:
        "../workflow/scripts/gather_split.py"
