"""Configuration checks, path conventions and input functions shared by every rule file."""

import re
from pathlib import Path

from seldflow.config import derive_seed, validate_config

validate_config(
    config,
    schema_path=Path(workflow.basedir) / "config" / "schema.yaml",
    source="config",
)

EXPERIMENT = config["experiment"]
DATASET_ROOT = config["dataset"]["root"]
SYNTHETIC = config["dataset"]["source"] == "synthetic"
TRAIN_SPLITS = config["dataset"]["train_splits"]
TEST_SPLITS = config["dataset"]["test_splits"]
ALL_SPLITS = TRAIN_SPLITS + TEST_SPLITS
RESULTS = "results"
# Named experiments (overrides of `train`) plus the main one; `rule all` builds the main one and `run_experiments`.
EXPERIMENTS = {EXPERIMENT: {}, **config.get("experiments", {})}
RUN_EXPERIMENTS = list(dict.fromkeys([EXPERIMENT, *config.get("run_experiments", [])]))
# Path pattern of everything one experiment produces (training onward).
EXPERIMENT_DIR = f"{RESULTS}/{{experiment}}"
SYNTH = config.get("synthesis", {})
ROOM_NAMES = list(SYNTH.get("rooms", {}).get("specs", {}))


wildcard_constraints:
    split="|".join(ALL_SPLITS),
    experiment="|".join(re.escape(name) for name in EXPERIMENTS),
    room="|".join(ROOM_NAMES) or "no-room",


# Audio folder each feature kind reads (the DCASE layout keeps formats side by side).
AUDIO_FOLDERS = {
    "pfoa": "stereo_dev",
    "logmel": "stereo_dev",
    "foa": "foa_dev",
    "mic": "mic_dev",
}


def audio_dir(split):
    return f"{DATASET_ROOT}/{AUDIO_FOLDERS[config['features']['kind']]}/{split}"


def metadata_dir(split):
    return f"{DATASET_ROOT}/metadata_dev/{split}"


def features_path(split):
    return f"{RESULTS}/features/{config['features']['kind']}/{split}.h5"


def split_audio(wildcards):
    return {
        "audio": audio_dir(wildcards.split),
        "metadata": metadata_dir(wildcards.split),
    }


def stage_seed(*names):
    return derive_seed(config["seed"], *names)


def train_settings(experiment):
    return {**config["train"], **EXPERIMENTS[experiment]}


def experiment_train(wildcards):
    return train_settings(wildcards.experiment)


def experiment_device(wildcards):
    return train_settings(wildcards.experiment)["device"]


def experiment_pretrained(wildcards):
    # A declared input, so replacing the checkpoint file retrains.
    path = train_settings(wildcards.experiment).get("pretrained")
    return [path] if path else []


def experiment_state_dir(wildcards):
    return f"{RESULTS}/{wildcards.experiment}/model/state"


def split_features(wildcards):
    return features_path(wildcards.split)


# Synthesis: rooms and seeds of each rendered split.
def split_rooms(wildcards):
    return [
        f"{RESULTS}/synthetic/rooms/{room}_foa.sofa"
        for room in SYNTH["splits"][wildcards.split]["rooms"]
    ]


def mixture_seed(wildcards):
    return stage_seed("mixtures", wildcards.split)


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
