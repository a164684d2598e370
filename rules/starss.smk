"""STARSS23 adapters: extra DCASE2025-style stereo training splits made from the FOA recordings (seeded rotation,
M/S cardioids, 5-s windows, folded labels, on-screen flags of a 100-degree camera), and FOA / MIC recordings cut
into 5-s clips for the foa and mic feature kinds. The splits they make are used like any other dataset split.
"""


rule starss_stereo:
    input:
        unpack(starss_sources),
    output:
        stereo=directory(f"{STARSS_STEREO_ROOT}/stereo_dev/{{split}}"),
        metadata=directory(f"{STARSS_STEREO_ROOT}/metadata_dev/{{split}}"),
    log:
        f"{RESULTS}/logs/starss_stereo/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/starss_stereo/{{split}}.tsv"
    wildcard_constraints:
        split="|".join(STARSS_STEREO) or "no-split",
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        folders=lambda wildcards: starss_folders("foa_dev"),
        spec=lookup(dpath="starss/stereo_splits/{split}", within=config),
        seed=lambda wildcards: stage_seed("starss_stereo", wildcards.split),
        field_of_view_deg=STARSS.get("field_of_view_deg"),
    script:
        "../workflow/scripts/starss_stereo.py"


# In the format the feature kind reads (foa_dev for foa, mic_dev for mic).
rule starss_windows:
    input:
        unpack(starss_sources),
    output:
        audio=directory(
            f"{STARSS_WINDOWS_ROOT}/{AUDIO_FORMATS[FEATURE_KIND]}_dev/{{split}}"
        ),
        metadata=directory(f"{STARSS_WINDOWS_ROOT}/metadata_dev/{{split}}"),
    log:
        f"{RESULTS}/logs/starss_windows/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/starss_windows/{{split}}.tsv"
    wildcard_constraints:
        split="|".join(STARSS_WINDOWS) or "no-split",
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        folders=lambda wildcards: starss_folders(f"{AUDIO_FORMATS[FEATURE_KIND]}_dev"),
        field_of_view_deg=STARSS.get("field_of_view_deg"),
        label_format=config["dataset"]["label_format"],
    script:
        "../workflow/scripts/starss_windows.py"
