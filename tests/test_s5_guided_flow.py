"""The second-place system in the S5 stages: the sed and guided_separator objectives, the Stage-1 detector of each
label column, the inference-iteration setting, named experiments and their config errors, and the summary table.

Expectations are computed by hand or restated from the reference facts (layer decay, -SNR, the selection rule),
never read back from the code under test. Sizes are tiny: half-second soundscapes at 8 kHz, a two-level U-Net and
a stand-in detector of width 4.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import default_config
from s5_helpers import GENERATOR, RATE, SEPARATOR_ARGS, build_dataset

from seldflow.checkpoints import save_checkpoint
from seldflow.config import validate_config
from seldflow.errors import ConfigError, InputError
from seldflow.s5 import layout
from seldflow.s5 import train as s5_train
from seldflow.s5.experiments import (
    S5Run,
    all_runs,
    listed_runs,
    main_runs,
    merge,
    separator_section,
    summary_runs,
)
from seldflow.s5.files import read_tags
from seldflow.s5.generator import open_generator
from seldflow.s5.infer import infer_s5
from seldflow.s5.score import summarise_runs
from seldflow.s5.soundscapes import read_descriptions
from seldflow.s5.synthesis import gather_test, render_shard
from seldflow.s5.train import (
    GuidedSeparatorObjective,
    SEDObjective,
    TrainSettings,
    batch_rng,
    check_networks,
    load_s5_checkpoint,
    model_from_s5_checkpoint,
    train_s5,
)
from seldflow.s5.vocabulary import LABELS
from seldflow.training_state import STATE_FILE

# The stand-in detector at the data's rate: 8 mel bands in one (8, 4) patch row, 32-ms steps pooled to 12 frames
# (0.5 s at 25 frames per second).
SED_ARGS: dict[str, Any] = {
    "input_rate": RATE,
    "front_end": {"sample_rate": RATE, "n_fft": 128, "hop_length": 64, "n_mels": 8, "fmax": None},
    "dim": 4,
    "depth": 2,
}
STAGE2 = {"model": "standin", "model_args": SED_ARGS}
GUIDED_ARGS: dict[str, Any] = {**SEPARATOR_ARGS, "sed": STAGE2, "injection": {}, "time_film": {}}
SED_GROUPS = {"layer_decay": 0.5}
GUIDED_GROUPS = {"pretrained_factor": 0.5, "lr_dprnn": 2e-3, "lr_sed": 4e-3, "sed_layer_decay": 0.5}


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("s5guided")
    return root, build_dataset(root)


@pytest.fixture(scope="module")
def test_set(dataset: tuple[Path, dict[str, Path]]) -> Path:
    root, plans = dataset
    shards = [root / "shards" / f"{shard:04d}" for shard in (0, 1)]
    for shard, out in enumerate(shards):
        render_shard(root, GENERATOR, plan=plans["test"], shard=shard, shard_soundscapes=4, out_dir=out)
    gather_test(shards, layout.test_dir(root))
    return layout.test_dir(root)


def _mixtures(root: Path, count: int = 2, seed: int = 3) -> list:
    generator = open_generator(root, "train", GENERATOR)
    rng = batch_rng(seed, 0, 0)
    return [generator.generate(rng) for _ in range(count)]


def _train(
    root: Path,
    out: Path,
    objective: s5_train.Objective,
    *,
    epochs: int = 1,
    warmup_steps: int | None = None,
    pretrained=None,
) -> dict[str, Any]:
    settings = TrainSettings(
        epochs=epochs, epoch_length=4, batch_size=2, lr=1e-2, seed=5, device="cpu", warmup_steps=warmup_steps
    )
    return train_s5(
        objective,
        open_generator(root, "train", GENERATOR),
        read_descriptions(layout.validation_metadata(root)),
        settings,
        checkpoint_out=out / "best.pt",
        metrics_out=out / "metrics.csv",
        state_dir=out / "state",
        pretrained=pretrained,
        validation_generator=open_generator(root, "valid", GENERATOR),
    )


def _rates(groups) -> dict[str, float]:
    return {group["name"]: group["lr"] for group in groups}


# --- the sed objective ------------------------------------------------------------------------------------------


def test_sed_batches_hold_channel_zero_and_frame_labels_from_the_on_offsets(
    dataset: tuple[Path, dict[str, Path]],
) -> None:
    mixtures = _mixtures(dataset[0])
    batch = SEDObjective("standin", SED_ARGS, SED_GROUPS).batch(mixtures, np.random.default_rng(0))
    frames = round(0.5 * 25)  # 25 frames per second
    assert batch.extras["frames"].shape == (2, len(LABELS), frames)
    for item, mixture in enumerate(mixtures):
        np.testing.assert_array_equal(batch.mixture[item].numpy(), mixture.mixture[0])
        expected = np.zeros((len(LABELS), frames), dtype=np.float32)
        for label, (onset, offset) in mixture.metadata["on_offset"].items():
            first = min(round(onset / 0.5 * frames), frames - 1)
            expected[LABELS.index(label), first : max(first + 1, min(round(offset / 0.5 * frames), frames))] = 1.0
        np.testing.assert_array_equal(batch.extras["frames"][item].numpy(), expected)
        targets = {label for label in mixture.labels if label != "silence"}
        assert {LABELS[i] for i in np.flatnonzero(batch.extras["clip"][item].numpy())} == targets


def test_sed_loss_is_finite_and_its_groups_decay_by_layer(dataset: tuple[Path, dict[str, Path]]) -> None:
    objective = SEDObjective("standin", SED_ARGS, SED_GROUPS)
    torch.manual_seed(0)
    model = objective.build()
    loss = objective.loss(model, objective.batch(_mixtures(dataset[0]), np.random.default_rng(0)))
    assert torch.isfinite(loss) and loss.item() > 0
    rates = _rates(objective.parameter_groups(model, 1e-2, 0.01))
    # Heads at lr; two blocks (the stem with the first): the last at lr * 0.5, the first at lr * 0.5 ** 2.
    assert rates == {
        "sed.heads": 1e-2,
        "sed.heads.no_decay": 1e-2,
        "sed.backbone.layer0": 1e-2 * 0.25,
        "sed.backbone.layer0.no_decay": 1e-2 * 0.25,
        "sed.backbone.layer1": 1e-2 * 0.5,
        "sed.backbone.layer1.no_decay": 1e-2 * 0.5,
    }


def test_sed_training_steps_with_its_groups_and_the_schedule(dataset: tuple[Path, dict[str, Path]], tmp_path) -> None:
    """The optimiser holds the objective's groups; with 2 steps and 1 warm-up step every rate ends at 0."""
    _train(dataset[0], tmp_path, SEDObjective("standin", SED_ARGS, SED_GROUPS), warmup_steps=1)
    state = torch.load(tmp_path / "state" / STATE_FILE, weights_only=True)
    groups = state["optimizer"]["param_groups"]
    assert {g["name"]: g["initial_lr"] for g in groups}["sed.backbone.layer0"] == pytest.approx(1e-2 * 0.25)
    assert all(g["lr"] == pytest.approx(0.0) for g in groups)  # cosine end of the run (2 steps)
    checkpoint = load_s5_checkpoint(tmp_path / "best.pt", "sed")
    assert checkpoint["param_groups"] == SED_GROUPS
    model, _ = model_from_s5_checkpoint(tmp_path / "best.pt", "sed")
    assert type(model).__name__ == "SoundEventDetector"
    # The evaluation's threshold sweep of the best weights, restated at 0.5 on the validation soundscapes.
    assert list(checkpoint["threshold_sweep"]) == pytest.approx([0.1 * k for k in range(1, 10)])
    generator = open_generator(dataset[0], "valid", GENERATOR)
    hits = []
    for description in read_descriptions(layout.validation_metadata(dataset[0])):
        rendered = generator.render(description)
        with torch.no_grad():
            clip = model(torch.from_numpy(rendered.mixture[0])[None]).weak[0].numpy()
        hits.append(set(_hand_selection(clip, 0.5)) == {label for label in rendered.labels if label != "silence"})
    assert checkpoint["threshold_sweep"][0.5] == pytest.approx(100.0 * np.mean(hits))


# --- the guided separator objective -----------------------------------------------------------------------------


def test_guided_loss_is_minus_the_snr_of_the_picked_source(dataset: tuple[Path, dict[str, Path]]) -> None:
    objective = GuidedSeparatorObjective("guided_resunet", GUIDED_ARGS, GUIDED_GROUPS)
    torch.manual_seed(0)
    model = objective.build().eval()
    mixtures = _mixtures(dataset[0])
    batch = objective.batch(mixtures, np.random.default_rng(4))
    with torch.no_grad():
        loss = objective.loss(model, batch).item()
        snrs = []
        for item, mixture in enumerate(mixtures):
            slot = int(batch.extras["pick"][item])
            query = torch.zeros(1, len(LABELS))
            query[0, LABELS.index(mixture.labels[slot])] = 1.0
            estimate = model(torch.from_numpy(mixture.mixture)[None], query)[0, 0].double().numpy()
            target = mixture.targets[slot].astype(np.float64)
            snrs.append(10 * math.log10(np.sum(target**2) / np.sum((target - estimate) ** 2)))
    assert math.isfinite(loss) and loss == pytest.approx(-np.mean(snrs), abs=1e-3)


def test_guided_groups_have_the_reference_rates() -> None:
    objective = GuidedSeparatorObjective("guided_resunet", {**GUIDED_ARGS, "dprnn": {"hidden": 4}}, GUIDED_GROUPS)
    model = objective.build()
    rates = _rates(objective.parameter_groups(model, 1e-2, 0.0))
    assert rates["new"] == rates["new.no_decay"] == 1e-2
    assert rates["pretrained"] == rates["pretrained.no_decay"] == pytest.approx(5e-3)
    assert rates["dprnn"] == rates["dprnn.no_decay"] == 2e-3
    # The Stage-2 SED's backbone from lr_sed with decay 0.5 per layer; its heads keep their weights (not trained).
    assert rates["sed.backbone.layer1"] == pytest.approx(2e-3) and rates["sed.backbone.layer0"] == pytest.approx(1e-3)
    assert not [name for name in rates if name.startswith("sed.heads")]
    frozen = GuidedSeparatorObjective(
        "guided_resunet", {**GUIDED_ARGS, "sed": {**STAGE2, "trainable": False}}, GUIDED_GROUPS
    )
    assert not [name for name in _rates(frozen.parameter_groups(frozen.build(), 1e-2, 0.0)) if "sed" in name]


def test_iterative_training_draws_once_per_training_batch_and_resumes_exactly(
    dataset: tuple[Path, dict[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two epochs of two batches: four draws (none in validation); a run killed after epoch 1 and rerun gives the
    uninterrupted run's checkpoint, schedule and draw counter included."""
    args = {**GUIDED_ARGS, "max_iterations": 3}
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    _train(
        dataset[0],
        fresh,
        GuidedSeparatorObjective("guided_resunet_iterative", args, GUIDED_GROUPS),
        epochs=2,
        warmup_steps=1,
    )
    assert int(load_s5_checkpoint(fresh / "best.pt")["model_state"]["iteration_draws"]) in (2, 4)
    state = torch.load(fresh / "state" / STATE_FILE, weights_only=True)
    assert int(state["model"]["iteration_draws"]) == 4

    epochs_run = []
    original = s5_train._train_epoch

    def killed_after_one(*args_, **kwargs):
        if epochs_run:
            raise KeyboardInterrupt
        epochs_run.append(1)
        return original(*args_, **kwargs)

    monkeypatch.setattr(s5_train, "_train_epoch", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        _train(
            dataset[0],
            resumed,
            GuidedSeparatorObjective("guided_resunet_iterative", args, GUIDED_GROUPS),
            epochs=2,
            warmup_steps=1,
        )
    monkeypatch.setattr(s5_train, "_train_epoch", original)
    _train(
        dataset[0],
        resumed,
        GuidedSeparatorObjective("guided_resunet_iterative", args, GUIDED_GROUPS),
        epochs=2,
        warmup_steps=1,
    )
    assert (resumed / "best.pt").read_bytes() == (fresh / "best.pt").read_bytes()


def test_the_stage_two_sed_starts_from_the_fine_tuned_detector(
    dataset: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    root = dataset[0]
    _train(root, tmp_path / "sed", SEDObjective("standin", SED_ARGS, SED_GROUPS))
    finetuned = tmp_path / "sed" / "best.pt"
    frozen = {**GUIDED_ARGS, "sed": {**STAGE2, "trainable": False}}
    objective = GuidedSeparatorObjective("guided_resunet", frozen, GUIDED_GROUPS)
    _train(
        root,
        tmp_path / "sep",
        objective,
        pretrained=lambda m: objective.load_pretrained(m, {"sed_finetuned": finetuned}),
    )
    sed_state = load_s5_checkpoint(finetuned, "sed")["model_state"]
    separator_state = load_s5_checkpoint(tmp_path / "sep" / "best.pt", "separator")["model_state"]
    # Frozen, it trains nothing and keeps its statistics: exactly the fine-tuned detector.
    assert sed_state and all(torch.equal(value, separator_state[f"sed.{key}"]) for key, value in sed_state.items())
    other = {**GUIDED_ARGS, "sed": {**STAGE2, "model_args": {**SED_ARGS, "dim": 8}}}
    mismatched = GuidedSeparatorObjective("guided_resunet", other, GUIDED_GROUPS)
    with pytest.raises(InputError) as error:
        mismatched.load_pretrained(mismatched.build(), {"sed_finetuned": finetuned})
    assert error.value.path == str(finetuned) and error.value.field == "model"


# --- inference columns ------------------------------------------------------------------------------------------


def _hand_selection(probabilities: np.ndarray, threshold: float) -> tuple[str, ...]:
    """The baseline rule restated: p >= threshold, else the most probable class; at most 3; class-index order."""
    order = sorted(range(len(LABELS)), key=lambda i: (-probabilities[i], i))
    above = [i for i in order if probabilities[i] >= threshold][:3]
    return tuple(LABELS[i] for i in sorted(above or order[:1]))


def _save_model(path: Path, objective: s5_train.Objective, model: torch.nn.Module) -> Path:
    save_checkpoint(path, {**objective.spec(), "model_state": model.state_dict(), "sample_rate": RATE})
    return path


@pytest.fixture(scope="module")
def iterative_separator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An iterative guided separator whose feedback input has non-zero weights (pass counts then differ)."""
    objective = GuidedSeparatorObjective("guided_resunet_iterative", {**GUIDED_ARGS, "max_iterations": 2})
    torch.manual_seed(1)
    model = objective.build()
    with torch.no_grad():
        model.pre_conv.weight[:, -1] = torch.randn_like(model.pre_conv.weight[:, -1])
    return _save_model(tmp_path_factory.mktemp("iterative") / "best.pt", objective, model)


def test_the_sed_column_selects_from_the_detectors_clip_probabilities(
    test_set: Path, iterative_separator: Path, tmp_path: Path
) -> None:
    objective = SEDObjective("standin", SED_ARGS, SED_GROUPS)
    torch.manual_seed(2)
    sed = _save_model(tmp_path / "sed.pt", objective, objective.build())
    out = tmp_path / "sed"
    infer_s5(test_set / "soundscape", iterative_separator, out, detector_checkpoint=sed, threshold=0.5)
    detector, _ = model_from_s5_checkpoint(sed, "sed")
    tags = read_tags(out / "tags.csv")
    for path in sorted((test_set / "soundscape").glob("*.wav")):
        mixture = sf.read(str(path), dtype="float32", always_2d=True)[0].T
        with torch.no_grad():
            clip = detector(torch.from_numpy(mixture)[None]).weak[0].numpy()
        assert tags[path.stem] == _hand_selection(clip, 0.5)
        assert {p.stem.rsplit("_", 1)[1] for p in out.glob(f"{path.stem}_*.wav")} == set(tags[path.stem])


def test_inference_iterations_set_the_pass_count(test_set: Path, iterative_separator: Path, tmp_path: Path) -> None:
    model, _ = model_from_s5_checkpoint(iterative_separator, "separator")
    soundscape = sorted((test_set / "soundscape").glob("*.wav"))[0]
    mixture = torch.from_numpy(sf.read(str(soundscape), dtype="float32", always_2d=True)[0].T)[None]
    oracle = test_set / "oracle_target"
    label = sorted(oracle.glob(f"{soundscape.stem}_*.wav"))[0].stem.rsplit("_", 1)[1]
    query = torch.zeros(1, len(LABELS))
    query[0, LABELS.index(label)] = 1.0
    estimates = {}
    for count in (1, 3):
        out = tmp_path / f"passes{count}"
        infer_s5(test_set / "soundscape", iterative_separator, out, oracle_dir=oracle, inference_iterations=count)
        estimates[count] = sf.read(str(out / f"{soundscape.stem}_{label}.wav"), dtype="float32")[0]
        with torch.no_grad():
            expected = model(mixture, query, n_iter=count)[0, 0].numpy()
        np.testing.assert_allclose(estimates[count], expected, atol=1e-5)
    assert not np.allclose(estimates[1], estimates[3])


def test_inference_iterations_need_an_iterative_separator_and_a_detector_checkpoint(
    test_set: Path, iterative_separator: Path, tmp_path: Path
) -> None:
    objective = GuidedSeparatorObjective("guided_resunet", GUIDED_ARGS)
    plain = _save_model(tmp_path / "plain.pt", objective, objective.build())
    oracle = test_set / "oracle_target"
    with pytest.raises(InputError) as error:
        infer_s5(test_set / "soundscape", plain, tmp_path / "out", oracle_dir=oracle, inference_iterations=2)
    assert error.value.path == str(plain) and error.value.field == "inference_iterations"
    with pytest.raises(InputError) as error:
        infer_s5(test_set / "soundscape", plain, tmp_path / "out", detector_checkpoint=iterative_separator)
    assert error.value.path == str(iterative_separator) and error.value.field == "kind"
    assert not (tmp_path / "out").exists()


# --- experiments ------------------------------------------------------------------------------------------------


def _s5(**experiments: Any) -> dict[str, Any]:
    return {
        "experiment": "main",
        "separator": {"model": "resunetk", "model_args": {"channels": [8], "n_fft": 64}, "epochs": 30, "lr": 1.0},
        "sed": {"model": "standin", "model_args": {"dim": 4}},
        "experiments": experiments,
    }


def test_merge_overrides_mappings_key_by_key_and_null_switches_off() -> None:
    base = {"a": 1, "m": {"x": 1, "y": {"p": 1}}, "off": {"k": 1}}
    assert merge(base, {"m": {"y": {"q": 2}}, "off": None, "a": [3]}) == {
        "a": [3],
        "m": {"x": 1, "y": {"p": 1, "q": 2}},
        "off": None,
    }
    assert base == {"a": 1, "m": {"x": 1, "y": {"p": 1}}, "off": {"k": 1}}  # not modified


def test_experiments_extend_in_chains_and_take_the_stage_two_sed_from_s5_sed() -> None:
    s5 = _s5(
        budget={"epochs": 3},
        full={
            "extends": "budget",
            "model": "guided_resunet",
            "model_args": {"sed": {"trainable": True}, "time_film": {}},
        },
        ablated={"extends": "full", "model_args": {"time_film": None, "injection": {}}},
        named={"extends": "full", "model_args": {"sed": {"model": "m2d"}}},
    )
    assert separator_section(s5, "main") == s5["separator"]
    assert separator_section(s5, "ablated") == {
        "model": "guided_resunet",
        "model_args": {
            "channels": [8],
            "n_fft": 64,
            "sed": {"model": "standin", "model_args": {"dim": 4}, "trainable": True},
            "time_film": None,
            "injection": {},
        },
        "epochs": 3,
        "lr": 1.0,
    }
    # A Stage-2 SED naming its own model is left as given.
    assert separator_section(s5, "named")["model_args"]["sed"] == {"model": "m2d", "trainable": True}


def test_runs_expand_inference_iterations_along_the_chain() -> None:
    s5 = _s5(
        it2={"model": "guided_resunet_iterative", "inference_iterations": [1, 3]},
        it3={"extends": "it2", "model_args": {"max_iterations": 3}},
        once={"extends": "it2", "inference_iterations": [2]},
        plain={},
    )
    s5["run_experiments"] = ["main", "plain", "it3"]
    s5["summary_experiments"] = ["main", "it3", "once"]
    assert list(all_runs(s5)) == ["main", "it2-inf1", "it2-inf3", "it3-inf1", "it3-inf3", "once-inf2", "plain"]
    assert all_runs(s5)["it3-inf3"] == S5Run("it3-inf3", "it3", 3)
    assert [run.name for run in main_runs(s5)] == ["main"]
    # s5_experiments leaves the main experiment to s5_all.
    assert [run.name for run in listed_runs(s5)] == ["plain", "it3-inf1", "it3-inf3"]
    assert [run.name for run in summary_runs(s5)] == ["main", "it3-inf1", "it3-inf3", "once-inf2"]


@pytest.mark.parametrize(
    ("experiments", "lists", "key"),
    [
        ({"a": {"extends": "nowhere"}}, {}, "experiments.a.extends"),
        ({"a": {"extends": "b"}, "b": {"extends": "a"}}, {}, "experiments.a.extends"),
        ({"a-inf2": {}, "a": {"inference_iterations": [2]}}, {}, "experiments.a"),
        ({}, {"run_experiments": ["missing"]}, "run_experiments"),
        ({}, {"summary_experiments": ["missing"]}, "summary_experiments"),
    ],
)
def test_experiment_mistakes_are_config_errors(experiments: dict, lists: dict, key: str) -> None:
    s5 = {**_s5(**experiments), **lists}
    with pytest.raises(ConfigError) as error:
        for name in s5["experiments"]:
            separator_section(s5, name)
        all_runs(s5)
        listed_runs(s5)
        summary_runs(s5)
    assert error.value.key == key


def _default_s5(**experiments: Any) -> dict[str, Any]:
    config = copy.deepcopy(default_config())
    config["s5"]["experiments"].update(experiments)
    return validate_config(config)["s5"]


def test_the_default_table_is_every_ablation_and_the_iteration_grid() -> None:
    s5 = _default_s5()
    check_networks(s5)
    grid = [f"guided_iter{m}-inf{n}" for m in (2, 3, 4) for n in (1, 2, 3, 4)]
    ablations = ["guided_full", "guided_no_time_film", "guided_no_injection", "guided_frozen_sed", "guided_dprnn"]
    assert [run.name for run in summary_runs(s5)] == ["baseline_budget", *ablations, *grid]
    assert [run.name for run in main_runs(s5)] == [s5["experiment"]]
    assert [run.name for run in listed_runs(s5)] == ["guided_full"]
    # Same budget: every table experiment trains as long as the baseline row.
    budgets = {
        (separator_section(s5, run.experiment)["epochs"], separator_section(s5, run.experiment)["epoch_length"])
        for run in summary_runs(s5)
    }
    assert len(budgets) == 1


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"extends": "guided_full", "model_args": {"sed": None}}, "experiments.bad.model_args"),
        ({"extends": "guided_full", "model_args": {"sed": None, "injection": None}}, "experiments.bad.model_args"),
        ({"extends": "guided_full", "model_args": {"injection": {"merge": "sum"}}}, "experiments.bad.model_args"),
        ({"extends": "guided_iter2", "model_args": {"max_iterations": 0}}, "experiments.bad.model_args"),
        ({"extends": "guided_full", "inference_iterations": [2]}, "experiments.bad.inference_iterations"),
        ({"param_groups": {"lr_sed": 1e-3}}, "experiments.bad.param_groups"),
        ({"extends": "guided_full", "param_groups": {"lr_sedd": 1e-3}}, "experiments.bad.param_groups.lr_sedd"),
        ({"pretrained": {"sed_finetuned": True}}, "experiments.bad.pretrained.sed_finetuned"),
        (
            {"extends": "guided_full", "model_args": {"sed": {"model": "standin", "model_args": {"dim": 4}}}},
            "experiments.bad.pretrained.sed_finetuned",
        ),
        ({"extends": "guided_full", "warmup_stepz": 3}, "experiments.bad.warmup_stepz"),
    ],
)
def test_bad_experiments_fail_the_network_check(entry: dict, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_networks(_default_s5(bad=entry))
    assert error.value.key == key


def test_merged_experiments_are_schema_checked() -> None:
    with pytest.raises(ConfigError) as error:
        _default_s5(bad={"extends": "guided_full", "epochs": 0})
    assert error.value.key == "s5.experiments.bad.epochs"


def test_the_detector_needs_its_layer_decay() -> None:
    s5 = _default_s5()
    s5["sed"]["param_groups"] = {}
    with pytest.raises(ConfigError) as error:
        check_networks(s5)
    assert error.value.key == "sed.param_groups.layer_decay"


# --- summary ----------------------------------------------------------------------------------------------------


def _metrics(path: Path, tagger: float | None, sed: float, oracle: float) -> Path:
    report = {
        "tagger": {"CA-SDRi": tagger, "label_accuracy": 0.5},
        "sed": {"CA-SDRi": sed, "label_accuracy": 0.75},
        "oracle": {"CA-SDRi": oracle, "label_accuracy": 1.0},
    }
    path.write_text(json.dumps(report))
    return path


def test_summary_ranks_runs_by_the_tagger_column(tmp_path: Path) -> None:
    metrics = {
        "base": _metrics(tmp_path / "a.json", 1.0, 2.0, 3.0),
        "it-inf2": _metrics(tmp_path / "b.json", 4.0, 1.0, 5.0),
        "broken": _metrics(tmp_path / "c.json", None, 9.0, 9.0),
    }
    runs = {
        "base": {"experiment": "base", "model": "resunetk", "inference_iterations": None},
        "it-inf2": {"experiment": "it", "model": "guided_resunet_iterative", "inference_iterations": 2},
        "broken": {"experiment": "broken", "model": "guided_resunet", "inference_iterations": None},
    }
    table = summarise_runs(metrics, runs, tmp_path / "summary.csv")
    assert list(table["run"]) == ["it-inf2", "base", "broken"]
    assert list(table["rank"]) == [1, 2, 3]
    lines = (tmp_path / "summary.csv").read_text().splitlines()
    assert lines[0] == (
        "rank,run,experiment,model,inference_iterations,CA-SDRi_tagger,CA-SDRi_sed,CA-SDRi_oracle,"
        "label_accuracy_tagger,label_accuracy_sed"
    )
    assert lines[1] == "1,it-inf2,it,guided_resunet_iterative,2,4.0000,1.0000,5.0000,0.5000,0.7500"
    assert lines[2].startswith("2,base,base,resunetk,,1.0000")
    (tmp_path / "d.json").write_text(json.dumps({"tagger": {"CA-SDRi": 1.0, "label_accuracy": 1.0}}))
    with pytest.raises(InputError) as error:
        summarise_runs({"base": tmp_path / "d.json"}, runs, tmp_path / "other.csv")
    assert error.value.path == str(tmp_path / "d.json") and error.value.field == "sed"
