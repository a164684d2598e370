"""Configuration schema: defaults are filled in, and every violation names the offending key."""

from __future__ import annotations

import pytest
import torch
from helpers import REPO, default_config, run_snakemake, tiny_config, write_config

from seldflow.config import check_model_args, derive_seed, train_settings_of, validate_config
from seldflow.errors import ConfigError


def test_default_config_is_valid_and_gets_defaults() -> None:
    config = default_config()
    del config["infer"]
    validate_config(config)
    assert config["infer"] == {"batch_size": 64, "activity_threshold": 0.5, "unify_deg": 15.0}
    assert config["train"]["early_stop_patience"] == 0


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c["train"].update(epochs=0), "train.epochs"),
        (lambda c: c["features"].pop("kind"), "features.kind"),
        (lambda c: c["features"].update(kinds="pfoa"), "features.kinds"),
        (lambda c: c["features"].update(kind="mfcc"), "features.kind"),
        (lambda c: c["synthesis"]["splits"]["dev-test-synth"].update(rooms=["nowhere"]), "synthesis.splits"),
        (lambda c: c["dataset"].update(test_splits=["dev-train-synth"]), "dataset.test_splits"),
        (lambda c: c["dataset"].update(train_splits=["unknown-split"]), "dataset.train_splits"),
        (lambda c: c["synthesis"]["mixtures"].update(snr_db=[30, 10]), "synthesis.mixtures.snr_db"),
        (lambda c: c.pop("synthesis"), "synthesis"),
        (lambda c: c["features"].update(win_length=2048), "features.win_length"),
        (lambda c: c["experiments"]["CNN14_BiMamba"].update(lr=-1), "experiments.CNN14_BiMamba.lr"),
        (lambda c: c["experiments"]["HTSAT"].update(model="resnet"), "experiments.HTSAT.model"),
        (lambda c: c["experiments"]["HTSAT"].update(epoch=3), "experiments.HTSAT.epoch"),
        (lambda c: c.update(run_experiments=["CNN14_Mamba"]), "run_experiments"),
        (lambda c: c["doanet"].pop("embedded"), "doanet.embedded"),
    ],
)
def test_violations_name_the_key(mutate, key: str) -> None:
    config = default_config()
    mutate(config)
    with pytest.raises(ConfigError) as excinfo:
        validate_config(config)
    assert excinfo.value.key.startswith(key)
    assert key in str(excinfo.value)


def test_derived_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(1, "mixtures", "a") == derive_seed(1, "mixtures", "a")
    assert derive_seed(1, "mixtures", "a") != derive_seed(1, "mixtures", "b")
    assert derive_seed(1, "mixtures", "a") != derive_seed(2, "mixtures", "a")


def test_workflow_rejects_bad_config_before_any_job(tmp_path) -> None:
    config = tiny_config()
    config["train"]["batch_size"] = -4
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    assert "train.batch_size" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("mutate", "key", "message"),
    [
        (lambda c: c["train"].update(model_args={"rnn_sise": 8}), "train.model_args.rnn_sise", "rnn_sise"),
        (
            lambda c: c["experiments"]["HTSAT"].update(model_args={"embed_dim": 8, "depth": [2, 2, 2]}),
            "experiments.HTSAT.model_args.depth",
            "unexpected keyword argument 'depth'",
        ),
        (
            lambda c: c["experiments"]["CNN14_Conformer"].update(model_args={"widths": [8, 8]}),
            "experiments.CNN14_Conformer.model_args.widths",
            "widths must be 6 positive channel counts",
        ),
        # Arguments in `train` reach every experiment of the same model that sets none of its own.
        (
            lambda c: (
                c.update(experiments={**c["experiments"], "short": {"epochs": 2}})
                or c["train"].update(model_args={"rnn_sizee": 8})
            ),
            "train.model_args.rnn_sizee",
            "unexpected keyword argument 'rnn_sizee'",
        ),
    ],
)
def test_model_args_are_checked_against_each_experiments_model(mutate, key: str, message: str) -> None:
    config = validate_config(default_config())
    check_model_args(config)  # the shipped configuration builds
    mutate(config)
    with pytest.raises(ConfigError, match=message) as excinfo:
        check_model_args(config)
    assert excinfo.value.key == key


def test_valid_model_args_pass_for_every_experiment() -> None:
    config = validate_config(default_config())
    config["train"]["model_args"] = {"rnn_size": 8, "fc_size": 8}
    for name, overrides in config["experiments"].items():
        overrides["model_args"] = {"dropout": 0.1} if name != "HTSAT" else {"drop_path": 0.0}
    check_model_args(config)


@pytest.mark.parametrize(
    ("experiments", "key"),
    [({}, "train.model_args.conv_channel"), ({"wide": {"model_args": {"conv_channel": 8}}}, "experiments.wide")],
)
def test_misspelt_model_argument_fails_the_dry_run(tmp_path, experiments: dict, key: str) -> None:
    config = tiny_config()
    config["experiments"] = experiments
    if not experiments:
        config["train"]["model_args"] = {"conv_channel": 8}
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    assert f"config key '{key}" in result.stdout + result.stderr
    assert "unexpected keyword argument 'conv_channel'" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_an_experiment_of_another_model_does_not_inherit_model_args() -> None:
    """SELDnet's pooling set in `train` (as the FOA configs do) must not reach the CNN14 and HTSAT recipes."""
    config = validate_config(default_config())
    config["train"]["model_args"] = {"t_pool": [5, 2, 1]}
    config["experiments"]["short"] = {"epochs": 2}
    check_model_args(config)
    assert train_settings_of(config, config["experiments"]["CNN14_Conformer"])["model_args"] == {}
    assert train_settings_of(config, config["experiments"]["short"])["model_args"] == {"t_pool": [5, 2, 1]}


def test_task4_config_layered_over_the_demo_trains_the_reference_tagger() -> None:
    """Config files merge key by key, so the dataset config must restate every tagger key the demo sets: the M2D
    tagger then gets the baseline's front end and fine-tuning stages, not the stand-in's (an M2D with the demo's
    32-band 8-kHz front end, or trained whole in step 2, would still build and run)."""
    from snakemake.utils import update_config

    from seldflow.config import load_yaml
    from seldflow.models.taggers import build_tagger
    from seldflow.s5.tagging import M2D_FMAX, M2D_HOP, M2D_N_FFT, M2D_N_MELS

    config = load_yaml(REPO / "config" / "config.yaml")
    update_config(config, load_yaml(REPO / "config" / "dcase2025_task4.yaml"))
    tagger = validate_config(config)["s5"]["tagger"]
    assert tagger["model"] == "m2d"
    assert tagger["stages"] == {"head": "head", "blocks": "2_blocks"}
    front_end = tagger["model_args"]["front_end"]
    assert (front_end["n_fft"], front_end["hop_length"], front_end["n_mels"]) == (M2D_N_FFT, M2D_HOP, M2D_N_MELS)
    assert front_end["fmax"] == M2D_FMAX
    with torch.device("meta"):
        build_tagger(tagger["model"], **tagger["model_args"])  # no stand-in argument left over
