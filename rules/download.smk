"""Zenodo downloads: one job per dataset of resources/datasets.tsv, run only when its marker is asked for.

    snakemake --cores 1 resources/dcase2025_stereo/.complete

Nothing in the default workflow depends on these jobs. The only output is the marker (a JSON manifest, written
last): Snakemake deletes the outputs of a failed job, and the partial `.part` downloads under
`resources/<dataset>/downloads/` must survive a failure to be resumed by the next run. The marker's path is
spelled once, by seldflow.download.marker_path, for this rule and for every rule that needs a download.
"""

from seldflow.download import dataset_dir, load_datasets, marker_path

# Each dataset's row without its note, so editing a note reruns nothing.
DOWNLOAD_DATASETS = {
    name: {**spec.to_dict(), "note": ""}
    for name, spec in load_datasets(
        Path(workflow.basedir) / "resources" / "datasets.tsv"
    ).items()
}


localrules:
    download,


rule download:
    output:
        marker=marker_path("{dataset}"),
    log:
        f"{RESULTS}/logs/download/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/{{dataset}}.tsv"
    wildcard_constraints:
        dataset="|".join(DOWNLOAD_DATASETS) or "no-dataset",
    conda:
        "../envs/download.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=24 * 60,
    params:
        # What to fetch is a param: a changed table row reruns the job. How to fetch
        # (config `download:`) is read by the script, so tuning it reruns nothing.
        spec=lookup(dpath="{dataset}", within=DOWNLOAD_DATASETS),
        dest=dataset_dir("{dataset}"),
    script:
        "../workflow/scripts/download.py"
