"""Features: one HDF5 file per split (stereo pseudo-FOA or baseline log-mel, ADPIT targets, LR-swap twins)."""


rule features:
    input:
        unpack(split_audio),
    output:
        h5=features_path("{split}"),
    log:
        f"{RESULTS}/logs/features/{config['features']['kind']}/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/features/{config['features']['kind']}/{{split}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        features=feature_params,
        lr_swap=lr_swap,
        sample_rate=24000,
    script:
        "../workflow/scripts/features.py"
