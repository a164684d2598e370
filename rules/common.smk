"""Configuration checks, path conventions and input functions shared by every rule file."""

import re
import sys
from pathlib import Path

# The library next to these rules (../src), first on the search path: the rules import it from there, and Snakemake
# hands its search path to every rule script, so a rule's conda env needs no install of seldflow (envs/*.yaml).
sys.path.insert(0, str(Path(str(workflow.current_basedir)).parent / "src"))

from seldflow.config import (
    check_model_args,
    check_train_options,
    derive_seed,
    train_settings_of,
    validate_config,
)
from seldflow.download import marker_path
from seldflow.openmp import set_spin_count
from seldflow.feature_kinds import FEATURE_KINDS, feature_frames
from seldflow.pretrain.chain import (
    checkpoint_path,
    mono_splits,
    pretraining_subsets,
    pretraining_task_config,
    training_arguments,
)
import seldflow.s5.layout as s5_layout
from seldflow.shards import (
    folder_signature,
    read_manifest,
    shard_names,
    shard_range,
    shard_signature as manifest_shard_signature,
)
from seldflow.tasks import build_task, task_spec

validate_config(
    config,
    schema_path=Path(workflow.basedir) / "config" / "schema.yaml",
    source="config",
)

# Idle OpenMP threads of every job spin briefly, then sleep (seldflow.openmp): jobs side by side do not collapse.
set_spin_count(config["runtime"]["openmp_spin_count"])

EXPERIMENT = config["experiment"]
DATASET_ROOT = config["dataset"]["root"]
SYNTHETIC = config["dataset"]["source"] == "synthetic"
# Zenodo dataset (a row of resources/datasets.tsv) whose download provides `root`, or None for a tree on disk.
DOWNLOAD = config["dataset"]["download"]
TRAIN_SPLITS = config["dataset"]["train_splits"]
TEST_SPLITS = config["dataset"]["test_splits"]
# Unlabelled splits (the DCASE evaluation set): features and submission CSVs only, never scored.
EVAL_SPLITS = config["dataset"]["eval_splits"]
LABELLED_SPLITS = TRAIN_SPLITS + TEST_SPLITS
ALL_SPLITS = LABELLED_SPLITS + EVAL_SPLITS
# Clips per synthesis and feature job: jobs grow with shards, not clips.
SHARD_CLIPS = config["dataset"]["shard_clips"]
# The one owner of the audio format: every rule that reads or writes clips takes these.
SAMPLE_RATE = config["dataset"]["sample_rate"]
CLIP_SECONDS = config["dataset"]["clip_seconds"]
CLIP_SAMPLES = round(SAMPLE_RATE * CLIP_SECONDS)
# STARSS23 adapters: splits made from the recordings, each under a root of its own.
STARSS = config.get("starss", {})
STARSS_STEREO = STARSS.get("stereo_splits", {})
STARSS_WINDOWS = STARSS.get("window_splits", [])
FEATURE_KIND = config["features"]["kind"]
RESULTS = "results"
STARSS_STEREO_ROOT = f"{RESULTS}/starss/DCASE2025_SELD_dataset"
STARSS_WINDOWS_ROOT = f"{RESULTS}/starss/STARSS23_windows"
# L3DAS22 Task 2 adapter: output split name -> dataset split numbers, written as a DCASE2021-style FOA tree.
L3DAS22 = config.get("l3das22", {})
L3DAS22_SPLITS = L3DAS22.get("splits", {})
L3DAS22_ROOT = f"{RESULTS}/l3das22/L3DAS22_foa"
FEATURES_DIR = f"{RESULTS}/features/{FEATURE_KIND}"
# Named experiments (overrides of `train`) plus the main one; `rule all` builds the main one and `run_experiments`.
EXPERIMENTS = {EXPERIMENT: {}, **config.get("experiments", {})}
RUN_EXPERIMENTS = list(dict.fromkeys([EXPERIMENT, *config.get("run_experiments", [])]))
# Path pattern of everything one experiment produces (training onward).
EXPERIMENT_DIR = f"{RESULTS}/{{experiment}}"
# Pretraining experiments (seldflow.pretrain.chain) train on subsets of the `pretraining` section, exported by rule
# pretrain_export as DCASE2021-style splits of their own names under PRETRAIN_SPLITS_ROOT; features as any split.
PRETRAIN_SPLITS = sorted(
    {
        subset
        for name, overrides in EXPERIMENTS.items()
        for subset in pretraining_subsets(train_settings_of(config, overrides))
    }
)
PRETRAIN_SPLITS_ROOT = f"{RESULTS}/pretrain/splits"
# AdapterBit's mono mode (seldflow.mono): splits of the `mono` section, rendered by rule mono_split as DCASE2021-style
# FOA splits of their own names under MONO_SPLITS_ROOT; experiments train on them with `mono_splits`.
MONO_SPLITS = list(config.get("mono", {}).get("splits", {}))
MONO_SPLITS_ROOT = f"{RESULTS}/mono/splits"
SYNTH = config.get("synthesis", {})
ROOMS = SYNTH.get("rooms", {})
# Simulated, measured (converted from a download) and ready-made SOFA rooms share one namespace of room ids.
SIMULATED_ROOMS = list(ROOMS.get("specs", {}))
MEASURED_ROOMS = ROOMS.get("measured", {})
SOFA_ROOMS = ROOMS.get("sofa", {})
ROOM_NAMES = SIMULATED_ROOMS + list(MEASURED_ROOMS) + list(SOFA_ROOMS)
# Downloads that hold each measured-room database (rows of resources/datasets.tsv).
ROOM_DOWNLOADS = {"tau": "tau_srir", "metu": "metu_sparg"}


wildcard_constraints:
    split="|".join(
        re.escape(split) for split in ALL_SPLITS + PRETRAIN_SPLITS + MONO_SPLITS
    ),
    shard=r"\d{4}",
    experiment="|".join(re.escape(name) for name in EXPERIMENTS),
    room="|".join(SIMULATED_ROOMS + list(MEASURED_ROOMS)) or "no-room",


# Audio format each feature kind reads (the DCASE layout keeps formats side by side: stereo_dev, foa_eval, ...).
AUDIO_FORMATS = {name: kind.audio_format for name, kind in FEATURE_KINDS.items()}


def split_root(split):
    if split in PRETRAIN_SPLITS:
        return PRETRAIN_SPLITS_ROOT
    if split in MONO_SPLITS:
        return MONO_SPLITS_ROOT
    if split in STARSS_STEREO:
        return STARSS_STEREO_ROOT
    if split in STARSS_WINDOWS:
        return STARSS_WINDOWS_ROOT
    if split in L3DAS22_SPLITS:
        return L3DAS22_ROOT
    return DATASET_ROOT


def made_split(split):
    """Whether a rule of this workflow writes the split's folders (rather than a download or the user)."""
    return (
        split in PRETRAIN_SPLITS
        or split in MONO_SPLITS
        or split in STARSS_STEREO
        or split in STARSS_WINDOWS
        or split in L3DAS22_SPLITS
        or SYNTHETIC
    )


def audio_dir(split, kind=FEATURE_KIND):
    part = "eval" if split in EVAL_SPLITS else "dev"
    return f"{split_root(split)}/{AUDIO_FORMATS[kind]}_{part}/{split}"


def metadata_dir(split):
    return f"{split_root(split)}/metadata_dev/{split}"


def features_path(split):
    return f"{FEATURES_DIR}/{split}.h5"


def split_folders(split):
    """The split's audio folder and, for labelled splits, its metadata folder."""
    folders = {"audio": audio_dir(split)}
    if split not in EVAL_SPLITS:
        folders["metadata"] = metadata_dir(split)
    return folders


def download_marker(split):
    """The download marker that stands for a split's folders, or None when a rule or the user provides them.

    A downloaded dataset is tracked by its marker: its folders are no rule's output, and asking for them would fail
    before the download ran. Rendered or existing folders are tracked themselves.
    """
    if DOWNLOAD and not made_split(split):
        return marker_path(DOWNLOAD)
    return None


def split_sources(wildcards):
    marker = download_marker(wildcards.split)
    return {"download": marker} if marker else split_folders(wildcards.split)


def starss_folders(audio_folder):
    root = STARSS["root"]
    return {
        "audio": f"{root}/{audio_folder}",
        "foa": f"{root}/foa_dev",
        "metadata": f"{root}/metadata_dev",
    }


def starss_sources(wildcards):
    if STARSS.get("download"):
        return {"download": marker_path(STARSS["download"])}
    return {"recordings": STARSS["root"]}


def reference_inputs(splits):
    """What the scorer's reference folders depend on: the download marker, or the folders themselves."""
    return [download_marker(split) or metadata_dir(split) for split in splits]


def split_folder_params(wildcards):
    folders = split_folders(wildcards.split)
    return {"audio": folders["audio"], "metadata": folders.get("metadata")}


def split_clip_list(wildcards):
    # The clip list is a checkpoint output: the shard jobs of a split are known once its folder is checked.
    return checkpoints.split_check.get(split=wildcards.split).output.clips


def split_signature(wildcards):
    """Signature of the files of a split's folders (a split_check param): an in-place edit reruns the check.

    Only for folders this workflow does not write itself (the user's or a download's); a rendered split is
    tracked through the rule that renders it.
    """
    if made_split(wildcards.split):
        return None
    return folder_signature(list(split_folders(wildcards.split).values()))


def shard_signature(wildcards):
    # The shard's own clips and their file signatures, from the checked manifest (a features param).
    return manifest_shard_signature(
        split_clip_list(wildcards), int(wildcards.shard), SHARD_CLIPS
    )


def split_shards(wildcards):
    n_clips = len(read_manifest(split_clip_list(wildcards)))
    return expand(
        f"{FEATURES_DIR}/{wildcards.split}/shard-{{shard}}.h5",
        shard=shard_names(n_clips, SHARD_CLIPS),
    )


def all_cores():
    """`--cores` (the most threads a job may take), or 1 when no run is planned (`--dag`, `--rulegraph`, `--report`).

    For rules that use the whole machine. Not `workflow.cores`: it raises without `--cores`, so even drawing the DAG
    would fail.
    """
    return workflow.resource_settings.cores or 1


def shard_index(wildcards):
    return int(wildcards.shard)


def stage_seed(*names):
    return derive_seed(config["seed"], *names)


def train_settings(experiment):
    return train_settings_of(config, EXPERIMENTS[experiment])


def experiment_train(wildcards):
    return training_arguments(train_settings(wildcards.experiment), RESULTS)


def experiment_task(experiment):
    """The task contract of an experiment: label format, method, class count and metric (a pretraining
    experiment's label format and classes are those of the pretraining subsets)."""
    settings = train_settings(experiment)
    source = config
    if pretraining_subsets(settings):
        source = pretraining_task_config(config, config["pretraining"])
    return build_task(task_spec(source, settings)).spec()


def experiment_task_spec(wildcards):
    return experiment_task(wildcards.experiment)


def label_task(experiment):
    # What the features stage needs of the task: how to read the labels. Methods and metrics do not change features.
    return {
        key: value
        for key, value in experiment_task(experiment).items()
        if key in ("name", "label_format", "n_classes")
    }


LABEL_TASK = label_task(EXPERIMENT)
# The pretraining splits' labels: the vocabulary of the pretraining bank (one for every pretraining experiment).
PRETRAIN_LABEL_TASK = next(
    (
        label_task(name)
        for name in EXPERIMENTS
        if pretraining_subsets(train_settings(name))
    ),
    None,
)
# Every experiment's task is built once here, so a misspelt method or metric fails the dry run; the same for a
# misspelt or invalid model argument, and for augmentations or adapters the model, method or features cannot take.
for _experiment in EXPERIMENTS:
    experiment_task(_experiment)
check_model_args(config, source="config")
check_train_options(config, source="config")


def experiment_device(wildcards):
    return train_settings(wildcards.experiment)["device"]


def experiment_pretrained(wildcards):
    # Declared inputs, so replacing a checkpoint file retrains: PSELDNets or AudioSet weights, or the checkpoint of
    # the pretraining experiment named by pretrained_from (the edge of the pretrain -> fine-tune chain).
    settings = training_arguments(train_settings(wildcards.experiment), RESULTS)
    return [
        settings[key]
        for key in ("pretrained", "pretrained_audioset")
        if settings.get(key)
    ]


def experiment_train_features(wildcards):
    # A pretraining experiment's subsets, a mono-mode experiment's mono splits, or the dataset's training splits.
    settings = train_settings(wildcards.experiment)
    splits = pretraining_subsets(settings) or mono_splits(settings) or TRAIN_SPLITS
    return [features_path(split) for split in splits]


def experiment_state_dir(wildcards):
    return f"{RESULTS}/{wildcards.experiment}/model/state"


def split_features(wildcards):
    return features_path(wildcards.split)


def split_labels(wildcards):
    # How a split's labels read: the pretraining vocabulary for the pretraining subsets, the dataset's otherwise.
    return PRETRAIN_LABEL_TASK if wildcards.split in PRETRAIN_SPLITS else LABEL_TASK


def split_clip_samples(wildcards):
    if wildcards.split in PRETRAIN_SPLITS:
        return round(SAMPLE_RATE * config["pretraining"]["clip_seconds"])
    return CLIP_SAMPLES


# Synthesis: rooms and seeds of each rendered split.
def room_file(room):
    return SOFA_ROOMS.get(room, f"{RESULTS}/synthetic/rooms/{room}_foa.sofa")


def split_rooms(wildcards):
    return [room_file(room) for room in SYNTH["splits"][wildcards.split]["rooms"]]


def source_bank():
    # A real bank on disk, or the procedural one the source_bank rule renders.
    path = SYNTH.get("source_bank", {}).get("path")
    return path or f"{RESULTS}/synthetic/sources"


def measured_room_download(wildcards):
    database = ROOM_DOWNLOADS[MEASURED_ROOMS[wildcards.room]["source"]]
    return marker_path(database)


def mono_seed(wildcards):
    return stage_seed("mono", wildcards.split)


def mixture_seed(wildcards):
    return stage_seed("mixtures", wildcards.split)


def synthesis_shards(split):
    return shard_names(SYNTH["splits"][split]["clips"], SHARD_CLIPS)


def mixture_shard(wildcards):
    # First clip and clip count of a synthesis shard; clip k's content depends only on (seed, fold, k).
    clips = shard_range(
        int(wildcards.shard), SHARD_CLIPS, SYNTH["splits"][wildcards.split]["clips"]
    )
    return {"first_clip": clips.start, "n_clips": len(clips)}


def mixture_shard_dirs(wildcards, folder):
    return expand(
        f"{RESULTS}/synthetic/shards/{wildcards.split}/{{shard}}/{folder}",
        shard=synthesis_shards(wildcards.split),
    )


def split_room_ids(wildcards):
    return [
        ROOM_NAMES.index(room) + 1 for room in SYNTH["splits"][wildcards.split]["rooms"]
    ]


# Features.
def lr_swap(wildcards):
    # Twins only augment training; validation and test clips stay as recorded.
    return config["features"]["lr_swap"] and wildcards.split in TRAIN_SPLITS


def feature_params(wildcards):
    return {k: v for k, v in config["features"].items() if k != "lr_swap"}


# Experiment outputs per split: scored predictions for test splits, submission CSVs for evaluation splits.
def experiment_predictions(experiment):
    return expand(
        f"{RESULTS}/{experiment}/predictions/{{split}}",
        split=TEST_SPLITS + EVAL_SPLITS,
    )


# ---------------------------------------------------------------------------------------------------------------
# S5 (DCASE2025 Task 4) branch
# ---------------------------------------------------------------------------------------------------------------
# A configuration without an `s5` section (a SELD-only one) plans no S5 rules.
S5_ENABLED = "s5" in config
S5 = config.get(
    "s5",
    {
        "experiment": "",
        "dataset": {"source": "folder", "root": "", "download": None},
        "added_banks": [],
    },
)
S5_EXPERIMENT = S5["experiment"]
S5_ROOT = S5["dataset"]["root"]
S5_EMBEDDED = S5["dataset"]["source"] == "embedded"
S5_DOWNLOAD = S5["dataset"]["download"]
S5_DIR = f"{RESULTS}/s5/{S5_EXPERIMENT}"
# Test soundscapes of the embedded dataset are rendered in shards, then gathered into the Task 4 layout.
S5_SHARDS_DIR = f"{RESULTS}/s5/shards"
S5_PLAN_DIR = f"{RESULTS}/s5/plan"
S5_TEST_SHARDS = (
    shard_names(S5["embedded"]["test_soundscapes"], S5["dataset"]["shard_soundscapes"])
    if S5_EMBEDDED
    else []
)
if S5_ENABLED:
    from seldflow.s5.cleaning import added_bank_folders, check_added_banks
    from seldflow.s5.train import (
        check_networks,
        sed_training_settings,
        separator_objective,
    )

    check_networks(S5)
    check_added_banks(S5)
from seldflow.s5.experiments import (
    LABEL_SOURCES,
    all_runs,
    listed_runs,
    main_runs,
    separator_sections,
    split_section,
    summary_runs,
)

# Label sources of the inference runs: the baseline tagger's or the fine-tuned SED's selection, or the reference
# labels (the separator's ceiling); every run is scored in each.
S5_LABEL_SOURCES = list(LABEL_SOURCES)
# Named S5 experiments (seldflow.s5.experiments): the resolved separator section of each trained one (the main
# one first) and the runs scored from them (results/s5/<run>/); s5_all builds the main runs, s5_experiments the listed ones, the summary the table's.
S5_SEPARATORS = separator_sections(S5) if S5_ENABLED else {}
S5_RUNS = all_runs(S5) if S5_ENABLED else {}
S5_MAIN_RUNS = [run.name for run in main_runs(S5)] if S5_ENABLED else []
S5_LISTED_RUNS = [run.name for run in listed_runs(S5)] if S5_ENABLED else []
S5_SUMMARY_RUNS = [run.name for run in summary_runs(S5)] if S5_ENABLED else []
# The Stage-1 detectors the workflow trains (shared by every run), by label source.
S5_DETECTORS = {
    "tagger": f"{S5_DIR}/tagger/blocks/best.pt",
    "sed": f"{S5_DIR}/sed/best.pt",
}


wildcard_constraints:
    s5exp="|".join(re.escape(name) for name in S5_SEPARATORS) or "no-s5",
    s5run="|".join(re.escape(name) for name in S5_RUNS) or "no-s5",


def s5_dataset_inputs(wildcards):
    """The download marker of a downloaded S5 dataset (a declared input, so a new download reruns)."""
    return [marker_path(S5_DOWNLOAD)] if S5_DOWNLOAD else []


def s5_stage_seed(wildcards):
    return stage_seed("s5", "tagger", wildcards.step)


def s5_tagger_network(wildcards):
    """The tagger of fine-tuning step ``step``; ``s5.tagger.stages`` says which of its parameters the step trains."""
    tagger = S5["tagger"]
    return {
        "kind": "tagger",
        "model": tagger["model"],
        "model_args": tagger["model_args"],
        "stage": tagger["stages"][wildcards.step],
    }


def s5_tagger_settings(wildcards):
    return S5["tagger"][wildcards.step]


def s5_separator_settings(wildcards):
    return split_section(S5_SEPARATORS[wildcards.s5exp])[1]


def s5_separator_network(wildcards):
    """The experiment's separator and the objective it trains with (guided separators: their own groups)."""
    network = split_section(S5_SEPARATORS[wildcards.s5exp])[0]
    return {
        "kind": separator_objective(network["model"]),
        "model": network["model"],
        "model_args": network.get("model_args") or {},
        "param_groups": network.get("param_groups") or {},
    }


def s5_separator_pretrained(name):
    """Input function of one external weight file of the experiment's separator (a path given in the config)."""

    def pretrained(wildcards):
        path = (S5_SEPARATORS[wildcards.s5exp].get("pretrained") or {}).get(name)
        return [path] if path else []

    return pretrained


def s5_separator_sed_finetuned(wildcards):
    """The fine-tuned SED's checkpoint, where the experiment starts its Stage-2 SED from it."""
    pretrained = S5_SEPARATORS[wildcards.s5exp].get("pretrained") or {}
    return [S5_DETECTORS["sed"]] if pretrained.get("sed_finetuned") else []


def s5_sed_weights(wildcards):
    """The M2D checkpoint loaded before the SED's fine-tuning (a declared input, so replacing it retrains)."""
    weights = S5["sed"].get("weights")
    return [weights] if weights else []


def s5_tagger_init(wildcards):
    """Step 2 starts from step 1's best checkpoint."""
    return [f"{S5_DIR}/tagger/head/best.pt"] if wildcards.step == "blocks" else []


def s5_tagger_weights(wildcards):
    """The M2D checkpoint loaded before step 1 (a declared input, so replacing it retrains)."""
    weights = S5["tagger"].get("weights")
    return [weights] if weights and wildcards.step == "head" else []


def s5_test_input(wildcards):
    """The test soundscapes: gathered from the embedded shards, or the (downloaded) dataset's folder."""
    return (
        [s5_layout.test_dir(S5_ROOT)] if S5_EMBEDDED else s5_dataset_inputs(wildcards)
    )


def s5_infer_detector(wildcards):
    detector = S5_DETECTORS.get(wildcards.labels)
    return [detector] if detector else []


def s5_detector_threshold(wildcards):
    return (
        S5[wildcards.labels]["threshold"] if wildcards.labels in S5_DETECTORS else None
    )


def s5_run_separator(wildcards):
    """The separator a run uses: its experiment's."""
    return f"{RESULTS}/s5/{S5_RUNS[wildcards.s5run].experiment}/separator/best.pt"


def s5_run_iterations(wildcards):
    return S5_RUNS[wildcards.s5run].inference_iterations


def s5_summary_runs():
    """What each summary row was: its experiment, separator model and inference pass count."""
    return {
        name: {
            "experiment": S5_RUNS[name].experiment,
            "model": S5_SEPARATORS[S5_RUNS[name].experiment]["model"],
            "inference_iterations": S5_RUNS[name].inference_iterations,
        }
        for name in S5_SUMMARY_RUNS
    }


def s5_oracle_param(wildcards):
    return str(s5_layout.test_oracle(S5_ROOT)) if wildcards.labels == "oracle" else None


def s5_bank_inputs(wildcards):
    """The source banks training draws from: the embedded ones, or the (downloaded) dataset's."""
    if S5_EMBEDDED:
        return [str(s5_layout.bank_dir(S5_ROOT, bank)) for bank in s5_layout.BANKS]
    return s5_dataset_inputs(wildcards)


def s5_validation_input(wildcards):
    """The validation plan: written by s5_plan for the embedded dataset, part of the (downloaded) dataset otherwise."""
    return (
        [str(s5_layout.validation_metadata(S5_ROOT))]
        if S5_EMBEDDED
        else s5_dataset_inputs(wildcards)
    )


def s5_root(wildcards):
    """The dataset root, as a function: the banks and plans written under it are outputs of these rules."""
    return S5_ROOT


# Added source banks (rules/s5_cleaning.smk): each s5.added_banks entry is cleaned into S5_ADDED_DIR/<name>,
# which the generators of the splits it lists join to their targets or interferers. None by default.
S5_ADDED_DIR = f"{RESULTS}/s5/added"
S5_ADDED_BANKS = {bank["name"]: bank for bank in S5["added_banks"]}
# The s5_cleaning wildcard matches configured names only.
S5_ADDED_NAMES = "|".join(map(re.escape, S5_ADDED_BANKS)) or "(?!)"


def s5_added_source(wildcards):
    """The folder of an added bank, as the user gave it (a declared input: changing it re-cleans)."""
    return S5_ADDED_BANKS[wildcards.added]["path"]


def s5_added_bank(wildcards):
    return S5_ADDED_BANKS[wildcards.added]


def s5_added(*splits):
    """Split -> role -> cleaned folders of the added banks that feed ``splits`` (the generators' `added`)."""
    return added_bank_folders(list(S5_ADDED_BANKS.values()), S5_ADDED_DIR, splits)


def s5_added_inputs(*splits):
    """The cleaned folders of the added banks that feed ``splits``, as rule inputs (each planned by s5_cleaning)."""
    return sorted(
        {
            folder
            for roles in s5_added(*splits).values()
            for folders in roles.values()
            for folder in folders
        }
    )


# ---------------------------------------------------------------------------------------------------------------
# Pretraining data (rules/pretrain_synthesis.smk)
# ---------------------------------------------------------------------------------------------------------------
# A configuration without a `pretraining` section plans no pretraining rules.
PRETRAIN_ENABLED = "pretraining" in config
PRETRAIN = config.get(
    "pretraining", {"root": "", "bank": {"path": None}, "shard_clips": 1, "subsets": {}}
)
if PRETRAIN_ENABLED:
    from seldflow.pretrain.synthesis import check_pretraining

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
    split = PRETRAIN_SUBSETS[wildcards.subset]["source_split"]
    return f"{PRETRAIN_BANK}/{split}"


def pretrain_shard_dirs(wildcards):
    return expand(
        f"{PRETRAIN_SHARDS_DIR}/{wildcards.subset}/{{shard}}",
        shard=pretrain_subset_shards(wildcards.subset),
    )


def benchmark_pretrain_params():
    """The pretraining synthesis row's settings (None without a `pretraining` section); its shard size is fixed
    here, as the benchmark rule fixes its other comparisons' sizes."""
    if not PRETRAIN_ENABLED:
        return None
    return {
        "settings": PRETRAIN,
        "clips": 10,
        "seed": stage_seed("pretraining", "benchmark"),
    }


# Benchmark rule (rules/benchmark.smk), its S5 rows.
# The S5 branch's own benchmark files (synthesis, and the S5 experiment's training, inference and scoring).
BENCH_S5_DIRS = (
    [f"{RESULTS}/s5/benchmarks", f"{S5_DIR}/benchmarks"] if S5_ENABLED else []
)


def benchmark_s5_inputs(wildcards):
    """With an `s5` section: the S5 scores (so the tagger's estimates exist), the test soundscapes and the banks
    the generator draws from."""
    if not S5_ENABLED:
        return {}
    return {
        "s5_metrics": f"{S5_DIR}/metrics.json",
        "s5_estimates": f"{S5_DIR}/estimates/tagger",
        "s5_test": s5_test_input(wildcards),
        "s5_banks": s5_bank_inputs(wildcards),
    }


def benchmark_s5_params():
    """The S5 rows' settings (None without an `s5` section); sizes fixed here, as the benchmark rule fixes
    its other comparisons' sizes."""
    if not S5_ENABLED:
        return None
    return {
        "root": S5_ROOT,
        "generator": S5["generator"],
        "split": "train",
        "mixtures": 50,
        "seed": stage_seed("s5", "benchmark"),
        "soundscapes": str(s5_layout.test_soundscapes(S5_ROOT)),
        "oracle": str(s5_layout.test_oracle(S5_ROOT)),
        "estimates": f"{S5_DIR}/estimates/tagger",
    }


# ---------------------------------------------------------------------------------------------------------------
# DOAnet (class-agnostic DOA tracking with the Hungarian network) branch
# ---------------------------------------------------------------------------------------------------------------
# A configuration without a `doanet` section plans no DOAnet rules.
DOANET_ENABLED = "doanet" in config
DOANET = config.get("doanet", {})
DOANET_DIR = f"{RESULTS}/doanet"
DOANET_EXPERIMENTS = list(DOANET.get("experiments", {}))
DOANET_RUN = DOANET.get("run_experiments", [])
# The DOAnet splits of the fold numbers (seldflow.tau_nigens2020.SPLITS) and the overlap-augmented scenes.
DOANET_SPLITS = ["train", "validation", "test"]
if DOANET_ENABLED:
    from seldflow.doanet.settings import (
        AUGMENTED_SPLIT,
        FORMATS as DOANET_FORMATS,
        check_doanet_config,
        describe as doanet_describe,
        experiment_settings as doanet_experiment_settings,
        network_args as doanet_network_args,
    )
    from seldflow.tau_nigens2020 import audio_folder, metadata_folder

    check_doanet_config(DOANET)
    DOANET_ROOT = DOANET["dataset"]["root"]
    DOANET_EMBEDDED = DOANET["dataset"]["source"] == "embedded"
    DOANET_DOWNLOAD = DOANET["dataset"]["download"]
    DOANET_EMBEDDED_DIR = f"{DOANET_DIR}/embedded"
    DOANET_HNET = DOANET["hnet"]["weights"] or f"{DOANET_DIR}/hnet/hnet.pt"
    # Audio formats the run experiments read: the check and the features cover those only.
    DOANET_USED_FORMATS = sorted(
        {doanet_experiment_settings(DOANET, name)["features"] for name in DOANET_RUN}
    )
else:
    AUGMENTED_SPLIT = "augmented"
    DOANET_FORMATS = ()
    DOANET_EMBEDDED = False


wildcard_constraints:
    doanet_experiment="|".join(map(re.escape, DOANET_EXPERIMENTS)) or "(?!)",
    fmt="|".join(DOANET_FORMATS) or "(?!)",
    dsplit="|".join([*DOANET_SPLITS, AUGMENTED_SPLIT]),


def doanet_settings(wildcards):
    """The merged `doanet.train` settings of the experiment of ``wildcards``."""
    return doanet_experiment_settings(DOANET, wildcards.doanet_experiment)


def doanet_dataset_inputs(wildcards=None):
    """What the dataset folders come from: the embedded render, the download marker, or the user's folders."""
    if DOANET_EMBEDDED:
        return [str(audio_folder(DOANET_ROOT, fmt)) for fmt in DOANET_FORMATS] + [
            str(metadata_folder(DOANET_ROOT))
        ]
    if DOANET_DOWNLOAD:
        return [marker_path(DOANET_DOWNLOAD)]
    return [str(audio_folder(DOANET_ROOT, fmt)) for fmt in DOANET_USED_FORMATS] + [
        str(metadata_folder(DOANET_ROOT))
    ]


def doanet_given_hnet(wildcards=None):
    """A given Hnet checkpoint (a declared input, so replacing it reruns the check and training)."""
    weights = DOANET["hnet"]["weights"]
    return [weights] if weights else []


def doanet_hnet_waits(wildcards):
    """Hnet training waits for the check with a folder dataset (its labels come from outside); embedded labels
    are rendered here, so Hnet trains while the clips are rendered."""
    return [] if DOANET_EMBEDDED else [f"{DOANET_DIR}/check.json"]


def doanet_augmented_root(fmt):
    return f"{DOANET_DIR}/augmented/{fmt}"


def doanet_split_inputs(wildcards):
    """The folders a feature file is made from (and the check, so no features of unchecked data)."""
    if wildcards.dsplit == AUGMENTED_SPLIT:
        root = doanet_augmented_root(wildcards.fmt)
        return [str(audio_folder(root, wildcards.fmt)), str(metadata_folder(root))]
    return [f"{DOANET_DIR}/check.json", *doanet_dataset_inputs()]


def doanet_split_source(wildcards):
    """Where the recordings of a split are read: the dataset root, or the augmented tree."""
    if wildcards.dsplit == AUGMENTED_SPLIT:
        return doanet_augmented_root(wildcards.fmt)
    return DOANET_ROOT


def doanet_features_path(fmt, split):
    return f"{DOANET_DIR}/features/{fmt}/{split}.h5"


def doanet_train_features(wildcards):
    settings = doanet_settings(wildcards)
    splits = ["train", AUGMENTED_SPLIT] if settings["augment"] else ["train"]
    return [doanet_features_path(settings["features"], split) for split in splits]


def doanet_validation_features(wildcards):
    return doanet_features_path(doanet_settings(wildcards)["features"], "validation")


def doanet_test_features(wildcards):
    return doanet_features_path(doanet_settings(wildcards)["features"], "test")


def doanet_hnet_input(wildcards):
    """The frozen Hnet of the dMOT losses (MSE training does not read it, so Hnet changes leave it alone)."""
    mode = (doanet_settings(wildcards)["loss"] or {}).get("mode", "dmot")
    return [DOANET_HNET] if mode == "dmot" else []


def doanet_model_args(wildcards):
    return doanet_network_args(doanet_settings(wildcards), DOANET)


def doanet_description(wildcards):
    return doanet_describe(doanet_settings(wildcards))


def doanet_room_sofa(room, fmt):
    """A simulated room's responses in one format (rule doanet_room writes both formats)."""
    return f"{DOANET_EMBEDDED_DIR}/rooms/{room}_{fmt}.sofa"


def doanet_room_files(wildcards):
    """Room name -> format -> SOFA path of an embedded split (the renderer's `rooms`)."""
    return {
        room: {fmt: doanet_room_sofa(room, fmt) for fmt in DOANET_FORMATS}
        for room in DOANET["embedded"]["splits"][wildcards.dsplit]["rooms"]
    }


def doanet_embedded_rooms(wildcards):
    """The SOFA files (FOA and MIC) of the rooms of an embedded split, as rule inputs."""
    return [
        path
        for files in doanet_room_files(wildcards).values()
        for path in files.values()
    ]


def doanet_room_numbers(wildcards):
    names = list(DOANET["embedded"]["rooms"])
    return [
        names.index(room) + 1
        for room in DOANET["embedded"]["splits"][wildcards.dsplit]["rooms"]
    ]
