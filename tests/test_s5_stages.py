"""S5 stages on one tiny embedded dataset: plans and sharded synthesis, training (determinism, resume after a kill,
checkpoint checks), inference with oracle and tagger labels, and the score stage's JSON."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import REPO
from s5_helpers import GENERATOR, RATE, SEPARATOR_ARGS, TAGGER_ARGS, build_dataset, train_tiny

from seldflow.checkpoints import save_checkpoint
from seldflow.errors import ConfigError, InputError
from seldflow.s5 import layout
from seldflow.s5.files import read_tags
from seldflow.s5.generator import open_generator
from seldflow.s5.infer import infer_s5
from seldflow.s5.score import score_label_sources
from seldflow.s5.soundscapes import read_descriptions
from seldflow.s5.synthesis import gather_test, plan_soundscapes, render_shard
from seldflow.s5.train import load_s5_checkpoint, model_from_s5_checkpoint, run_training, with_sample_rate
from seldflow.s5.vocabulary import LABELS, SILENCE

SHARD = 4
# The CA-SDRi eps (float32 machine epsilon), restated from the metric's definition for the hand computation.
EPS = np.float32(np.finfo(np.float32).eps)


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("s5data")
    return root, build_dataset(root)


@pytest.fixture(scope="module")
def test_set(dataset: tuple[Path, dict[str, Path]]) -> Path:
    """The test plan rendered as two shards (4 + 2 soundscapes) and gathered into ``dev_set/test``."""
    root, plans = dataset
    shards = [root / "shards" / f"{shard:04d}" for shard in (0, 1)]
    for shard, out in enumerate(shards):
        render_shard(root, GENERATOR, plan=plans["test"], shard=shard, shard_soundscapes=SHARD, out_dir=out)
    gather_test(shards, layout.test_dir(root))
    return layout.test_dir(root)


@pytest.fixture(scope="module")
def separator(dataset: tuple[Path, dict[str, Path]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("separator")
    train_tiny(dataset[0], out, kind="separator", epochs=1)
    return out / "best.pt"


@pytest.fixture(scope="module")
def tagger(dataset: tuple[Path, dict[str, Path]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tagger")
    train_tiny(dataset[0], out, kind="tagger", epochs=1)
    return out / "best.pt"


def _read_wav(path: Path) -> tuple[np.ndarray, int, str]:
    """[C, N] float32 samples, the rate and the subtype of a WAV file."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.T, rate, sf.info(str(path)).subtype


def _metric_rows(path: Path, drop: tuple[str, ...] = ("seconds",)) -> list[dict[str, str]]:
    """metrics.csv rows without the wall-clock column (the one value a rerun cannot reproduce)."""
    with path.open(newline="") as fh:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(fh)]


# --- plans and sharded synthesis --------------------------------------------------------------------------------


def test_plans_are_reproducible_and_round_trip(dataset: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    root, plans = dataset
    # Same file name as the original: the index names its description folder after itself.
    again, shorter, other = tmp_path / "again" / "test.json", tmp_path / "shorter.json", tmp_path / "other.json"
    plan_soundscapes(root, GENERATOR, split="test", count=6, seed=5, out_json=again)
    plan_soundscapes(root, GENERATOR, split="test", count=4, seed=5, out_json=shorter)
    plan_soundscapes(root, GENERATOR, split="test", count=6, seed=6, out_json=other)
    assert again.read_bytes() == plans["test"].read_bytes()
    names = [f"test_{k:05d}" for k in range(6)]
    for name in names:
        written = (tmp_path / "again" / "test" / f"{name}.json").read_bytes()
        assert written == (plans["test"].parent / "test" / f"{name}.json").read_bytes()

    descriptions = read_descriptions(plans["test"])
    assert [d["name"] for d in descriptions] == names
    index = json.loads(plans["test"].read_text())
    for entry, description in zip(index, descriptions, strict=True):
        assert entry["metadata_path"] == f"test/{entry['soundscape']}.json"
        assert entry["ref_event"] == description["labels"]
        assert len(description["labels"]) == 3
        on_disk = json.loads((plans["test"].parent / entry["metadata_path"]).read_text())
        assert on_disk == description
    # Each soundscape comes from its own seed: a shorter plan is a prefix, another seed another plan.
    assert read_descriptions(shorter) == descriptions[:4]
    assert [d["events"] for d in read_descriptions(other)] != [d["events"] for d in descriptions]
    valid = read_descriptions(plans["valid"])
    assert [d["name"] for d in valid] == [f"valid_{k:05d}" for k in range(4)]
    # Validation soundscapes come from the validation rooms, test soundscapes from the test rooms.
    assert {d["room"] for d in valid} == set(open_generator(root, "valid", GENERATOR).rooms)
    assert {d["room"] for d in descriptions} == set(open_generator(root, "test", GENERATOR).rooms)


def test_shards_gather_into_the_test_layout_bit_exactly(dataset: tuple[Path, dict[str, Path]], test_set: Path) -> None:
    root, plans = dataset
    descriptions = read_descriptions(plans["test"])
    mixtures = sorted(p.name for p in (test_set / "soundscape").iterdir())
    assert mixtures == [f"{d['name']}.wav" for d in descriptions]
    expected_oracle = {f"{d['name']}_{label}.wav" for d in descriptions for label in d["labels"] if label != SILENCE}
    assert {p.name for p in (test_set / "oracle_target").iterdir()} == expected_oracle
    generator = open_generator(root, "test", GENERATOR)
    for description in descriptions:
        rendered = generator.render(description)
        mixture, rate, subtype = _read_wav(test_set / "soundscape" / f"{description['name']}.wav")
        assert (rate, subtype) == (RATE, "FLOAT")
        assert mixture.shape == (4, int(0.5 * RATE))
        np.testing.assert_array_equal(mixture, rendered.mixture)
        for slot, label in enumerate(rendered.labels):
            if label != SILENCE:
                target, _, _ = _read_wav(test_set / "oracle_target" / f"{description['name']}_{label}.wav")
                np.testing.assert_array_equal(target, rendered.targets[slot][None])
    # The first shard holds soundscapes 0-3, the second 4-5; there is no third.
    assert len(list((root / "shards" / "0001" / "soundscape").iterdir())) == 2
    with pytest.raises(ValueError, match="out of range"):
        render_shard(root, GENERATOR, plan=plans["test"], shard=2, shard_soundscapes=SHARD, out_dir=root / "bad")


def test_added_banks_join_the_plans_and_renders_of_their_splits(
    dataset: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    """A cleaned added bank (``<class>/*.wav`` at the generator rate, as the cleaning stage writes it) feeds the
    generator of the splits it is given for, and no other."""
    root, _ = dataset
    extra = tmp_path / "added" / "extra"
    rng = np.random.default_rng(0)
    for label in LABELS:  # five clips per class beside the embedded one: most target draws pick an added clip
        for k in range(5):
            (extra / label).mkdir(parents=True, exist_ok=True)
            sf.write(extra / label / f"{k:05d}_x.wav", 0.3 * rng.standard_normal(int(0.3 * RATE)), RATE)
    added = {"test": {"target": [str(extra)]}}
    plan = tmp_path / "plan" / "test.json"
    plan_soundscapes(root, GENERATOR, split="test", count=6, seed=5, out_json=plan, added=added)
    files = [event["file"] for d in read_descriptions(plan) for event in d["events"] if "label" in event]
    from_extra = [name for name in files if (root / "dev_set" / name).resolve().is_relative_to(extra.resolve())]
    assert from_extra, files
    generator = open_generator(root, "test", GENERATOR, added)
    assert all(len(generator.bank.targets[label]) == 6 for label in LABELS)
    assert all(len(open_generator(root, "train", GENERATOR, added).bank.targets[label]) == 1 for label in LABELS)
    render_shard(root, GENERATOR, plan=plan, shard=0, shard_soundscapes=SHARD, out_dir=tmp_path / "shard", added=added)
    assert len(list((tmp_path / "shard" / "soundscape").iterdir())) == SHARD


# --- training ---------------------------------------------------------------------------------------------------


def test_separator_training_is_deterministic(
    dataset: tuple[Path, dict[str, Path]], separator: Path, tmp_path: Path
) -> None:
    train_tiny(dataset[0], tmp_path, kind="separator", epochs=1)
    assert (tmp_path / "best.pt").read_bytes() == separator.read_bytes()
    assert _metric_rows(tmp_path / "metrics.csv") == _metric_rows(separator.parent / "metrics.csv")
    checkpoint = load_s5_checkpoint(separator, "separator")
    assert checkpoint["sample_rate"] == RATE and checkpoint["model_args"] == SEPARATOR_ARGS
    other = tmp_path / "other_seed"
    train_tiny(dataset[0], other, kind="separator", epochs=1, seed=12)
    assert (other / "best.pt").read_bytes() != separator.read_bytes()


def test_resumed_training_equals_an_uninterrupted_run(dataset: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    root = dataset[0]
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    train_tiny(root, fresh, kind="tagger", epochs=2)
    train_tiny(root, resumed, kind="tagger", epochs=1)
    first_epoch = (resumed / "metrics.csv").read_text().splitlines()[1]
    train_tiny(root, resumed, kind="tagger", epochs=2)
    assert (resumed / "best.pt").read_bytes() == (fresh / "best.pt").read_bytes()
    assert _metric_rows(resumed / "metrics.csv") == _metric_rows(fresh / "metrics.csv")
    # The epoch-1 row, wall-clock time included, is the first call's: epoch 1 was not trained again.
    assert (resumed / "metrics.csv").read_text().splitlines()[1] == first_epoch


KILLED_RUN = """
import sys
from pathlib import Path
import torch
from s5_helpers import train_tiny
torch.set_num_threads(1)
train_tiny(Path(sys.argv[1]), Path(sys.argv[2]), kind="separator", epochs=1000)
"""


def test_a_killed_run_leaves_only_its_state_and_resumes(dataset: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    root, out = dataset[0], tmp_path / "run"
    state = out / "state" / "last.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(root), str(out)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not state.is_file() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        process.kill()  # SIGKILL: no handler runs, as with kill -9
        process.wait()
    assert state.is_file(), "the run saved no state after its first epoch"
    assert not (out / "best.pt").exists() and not (out / "metrics.csv").exists()
    assert (out / "state" / "metrics.csv").is_file()
    done = torch.load(state, weights_only=True)["epoch"]
    history = (out / "state" / "metrics.csv").read_text().splitlines()[1 : done + 1]
    train_tiny(root, out, kind="separator", epochs=done + 1)
    lines = (out / "metrics.csv").read_text().splitlines()
    assert len(lines) == done + 2 and lines[1 : done + 1] == history
    assert load_s5_checkpoint(out / "best.pt", "separator")["epoch"] in range(1, done + 2)


def test_tagger_step_two_starts_from_step_one(
    dataset: tuple[Path, dict[str, Path]], tagger: Path, tmp_path: Path
) -> None:
    """Step 2 loads step 1's weights and trains only the last two blocks and the head."""
    train_tiny(dataset[0], tmp_path, kind="tagger", epochs=1, stage="2_blocks", init_from=tagger)
    before = load_s5_checkpoint(tagger, "tagger")["model_state"]
    after = load_s5_checkpoint(tmp_path / "best.pt", "tagger")["model_state"]
    frozen = [key for key in before if key.startswith("backbone.blocks.0.")]
    assert frozen and all(torch.equal(before[key], after[key]) for key in frozen)
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert not torch.equal(before["backbone.blocks.2.conv.weight"], after["backbone.blocks.2.conv.weight"])


def test_step_two_from_a_checkpoint_of_other_model_args_names_the_file(
    dataset: tuple[Path, dict[str, Path]], tagger: Path, separator: Path, tmp_path: Path
) -> None:
    wider = {**TAGGER_ARGS, "channels": [8, 8, 8]}
    with pytest.raises(InputError) as error:
        train_tiny(dataset[0], tmp_path, kind="tagger", epochs=1, stage="2_blocks", init_from=tagger, model_args=wider)
    assert error.value.path == str(tagger) and error.value.field == "model"
    assert not (tmp_path / "best.pt").exists()
    with pytest.raises(InputError) as error:
        train_tiny(dataset[0], tmp_path, kind="tagger", epochs=1, stage="2_blocks", init_from=separator)
    assert error.value.path == str(separator) and error.value.field == "kind"


def test_checkpoint_kind_is_checked(separator: Path, tagger: Path) -> None:
    with pytest.raises(InputError) as error:
        load_s5_checkpoint(separator, "tagger")
    assert error.value.path == str(separator) and error.value.field == "kind"
    with pytest.raises(InputError):
        model_from_s5_checkpoint(tagger, "separator")


TAGGER_NETWORK = {"kind": "tagger", "model": "standin", "model_args": TAGGER_ARGS, "stage": "head"}
TINY_STEP = {"epochs": 1, "epoch_length": 2, "batch_size": 2, "lr": 1e-3, "device": "cpu"}


def _run_training(
    dataset: tuple[Path, dict[str, Path]], out: Path, network: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """The rules' entry point on the tiny dataset, outputs under ``out``."""
    root, plans = dataset
    return run_training(
        root=root,
        generator=GENERATOR,
        network=network,
        settings=settings,
        seed=0,
        validation=plans["valid"],
        checkpoint_out=out / "best.pt",
        metrics_out=out / "metrics.csv",
        state_dir=out / "state",
    )


def test_tagger_front_end_takes_the_generator_rate(dataset: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    assert with_sample_rate("tagger", {"front_end": {"n_mels": 8}}, RATE) == {
        "front_end": {"n_mels": 8, "sample_rate": RATE}
    }
    assert with_sample_rate("separator", SEPARATOR_ARGS, RATE) == SEPARATOR_ARGS
    mismatched = {**TAGGER_ARGS, "front_end": {**TAGGER_ARGS["front_end"], "sample_rate": 16000}}
    with pytest.raises(ConfigError) as error:
        _run_training(dataset, tmp_path, {**TAGGER_NETWORK, "model_args": mismatched}, TINY_STEP)
    assert error.value.key == "tagger.model_args.front_end.sample_rate"
    assert not (tmp_path / "state").exists()
    # Left out, the rate is the generator's, and the checkpoint records it.
    unstated = {**TAGGER_ARGS, "front_end": {k: v for k, v in TAGGER_ARGS["front_end"].items() if k != "sample_rate"}}
    _run_training(dataset, tmp_path / "ok", {**TAGGER_NETWORK, "model_args": unstated}, TINY_STEP)
    assert load_s5_checkpoint(tmp_path / "ok" / "best.pt", "tagger")["model_args"] == TAGGER_ARGS


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({**TINY_STEP, "epoch_lenght": 2}, "epoch_lenght"),
        ({key: value for key, value in TINY_STEP.items() if key != "lr"}, "lr"),
    ],
)
def test_training_settings_are_config_checked(
    dataset: tuple[Path, dict[str, Path]], tmp_path: Path, settings: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as error:
        _run_training(dataset, tmp_path, TAGGER_NETWORK, settings)
    assert error.value.key == key


# --- inference --------------------------------------------------------------------------------------------------


def _labels_by_soundscape(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.glob("*.wav"):
        name, label = path.stem.rsplit("_", 1)
        found.setdefault(name, set()).add(label)
    return found


def _hand_selection(probabilities: np.ndarray, threshold: float) -> tuple[str, ...]:
    """The baseline rule restated: p >= threshold, else the most probable class; at most 3; class-index order."""
    order = sorted(range(len(LABELS)), key=lambda i: (-probabilities[i], i))
    above = [i for i in order if probabilities[i] >= threshold][:3]
    return tuple(LABELS[i] for i in sorted(above or order[:1]))


def test_oracle_inference_writes_one_estimate_per_reference(test_set: Path, separator: Path, tmp_path: Path) -> None:
    out = tmp_path / "oracle"
    infer_s5(test_set / "soundscape", separator, out, oracle_dir=test_set / "oracle_target")
    references = _labels_by_soundscape(test_set / "oracle_target")
    assert _labels_by_soundscape(out) == references
    assert {name: set(labels) for name, labels in read_tags(out / "tags.csv").items()} == references
    model, _ = model_from_s5_checkpoint(separator, "separator")
    for name, labels in references.items():
        mixture, _, _ = _read_wav(test_set / "soundscape" / f"{name}.wav")
        ordered = sorted(labels, key=LABELS.index)
        queries = torch.zeros(1, 3, len(LABELS))
        for slot, label in enumerate(ordered):
            queries[0, slot, LABELS.index(label)] = 1.0
        with torch.no_grad():
            expected = model.separate(torch.from_numpy(mixture)[None], queries)[0].numpy()
        for slot, label in enumerate(ordered):
            estimate, rate, subtype = _read_wav(out / f"{name}_{label}.wav")
            assert (rate, subtype, estimate.shape) == (RATE, "FLOAT", (1, mixture.shape[1]))
            np.testing.assert_allclose(estimate[0], expected[slot], rtol=0, atol=1e-6)


@pytest.mark.parametrize("threshold", [0.0, 1.01])
def test_tagger_inference_follows_the_selection_rule(
    test_set: Path, separator: Path, tagger: Path, tmp_path: Path, threshold: float
) -> None:
    """Threshold 0 keeps the three most probable classes, one above every probability keeps only the best."""
    out = tmp_path / "tagged"
    infer_s5(test_set / "soundscape", separator, out, detector_checkpoint=tagger, threshold=threshold)
    tags = read_tags(out / "tags.csv")
    model, _ = model_from_s5_checkpoint(tagger, "tagger")
    with (out / "tags.csv").open(newline="") as fh:
        written = {row["soundscape"]: np.array([float(row[label]) for label in LABELS]) for row in csv.DictReader(fh)}
    for path in sorted((test_set / "soundscape").glob("*.wav")):
        mixture, _, _ = _read_wav(path)
        with torch.no_grad():
            probabilities = torch.sigmoid(model(torch.from_numpy(mixture)[None]))[0].numpy()
        np.testing.assert_allclose(written[path.stem], probabilities, atol=1e-6)
        expected = _hand_selection(probabilities, threshold)
        assert len(expected) == (3 if threshold == 0.0 else 1)
        assert tags[path.stem] == expected
    assert _labels_by_soundscape(out) == {name: set(labels) for name, labels in tags.items()}


def test_inference_rejects_another_sample_rate_atomically(test_set: Path, separator: Path, tmp_path: Path) -> None:
    folder = tmp_path / "soundscapes"
    shutil.copytree(test_set / "soundscape", folder)
    odd = sorted(folder.glob("*.wav"))[2]
    audio, _, _ = _read_wav(odd)
    sf.write(str(odd), audio.T, 2 * RATE, subtype="FLOAT")
    out = tmp_path / "out"
    with pytest.raises(InputError) as error:
        infer_s5(folder, separator, out, oracle_dir=test_set / "oracle_target")
    assert error.value.path == str(odd) and error.value.field == "sample_rate"
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["soundscapes"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError) as error:
        infer_s5(empty, separator, out, oracle_dir=test_set / "oracle_target")
    assert error.value.path == str(empty)


def test_inference_checks_channels_and_the_tagger_rate(
    test_set: Path, separator: Path, tagger: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "soundscapes"
    shutil.copytree(test_set / "soundscape", folder)
    stereo = sorted(folder.glob("*.wav"))[1]
    sf.write(str(stereo), _read_wav(stereo)[0][:2].T, RATE, subtype="FLOAT")
    with pytest.raises(InputError) as error:
        infer_s5(folder, separator, tmp_path / "out", oracle_dir=test_set / "oracle_target")
    assert error.value.path == str(stereo) and error.value.field == "channels"
    # A tagger whose checkpoint says it was trained at another rate than the separator.
    checkpoint = torch.load(tagger, weights_only=True)
    other_rate = tmp_path / "tagger_16k.pt"
    save_checkpoint(other_rate, {**checkpoint, "sample_rate": 2 * RATE})
    with pytest.raises(InputError) as error:
        infer_s5(test_set / "soundscape", separator, tmp_path / "out", detector_checkpoint=other_rate)
    assert error.value.path == str(other_rate) and error.value.field == "sample_rate"
    assert not (tmp_path / "out").exists()


# --- scoring ----------------------------------------------------------------------------------------------------


def _hand_ca_sdri(test_set: Path, estimates: Path) -> float:
    """Mean over soundscapes of the mean SDRi of its references (every estimate present: no FP, no FN)."""
    scores = []
    for name, labels in _labels_by_soundscape(test_set / "oracle_target").items():
        mixture, _, _ = _read_wav(test_set / "soundscape" / f"{name}.wav")
        sdri = []
        for label in labels:
            reference = _read_wav(test_set / "oracle_target" / f"{name}_{label}.wav")[0][0]
            estimate = _read_wav(estimates / f"{name}_{label}.wav")[0][0]
            power = np.sum(reference * reference) + EPS
            snr = 10 * np.log10(power / (np.sum((reference - estimate) ** 2) + EPS))
            snr_mixture = 10 * np.log10(power / (np.sum((reference - mixture[0]) ** 2) + EPS))
            sdri.append(snr - snr_mixture)
        scores.append(np.mean(sdri))
    return float(np.mean(scores))


def test_score_reports_the_tagger_run_with_the_oracle_beside(
    test_set: Path, separator: Path, tagger: Path, tmp_path: Path
) -> None:
    oracle, tagged = tmp_path / "oracle", tmp_path / "tagger"
    infer_s5(test_set / "soundscape", separator, oracle, oracle_dir=test_set / "oracle_target")
    infer_s5(test_set / "soundscape", separator, tagged, detector_checkpoint=tagger, threshold=0.0)
    out = tmp_path / "metrics.json"
    returned = score_label_sources(
        test_set / "soundscape", test_set / "oracle_target", {"tagger": tagged, "oracle": oracle}, out
    )
    report = json.loads(out.read_text())
    assert report == json.loads(json.dumps(returned))
    assert report["CA-SDRi"] == report["tagger"]["CA-SDRi"]
    assert report["label_accuracy"] == report["tagger"]["label_accuracy"]
    assert report["oracle"]["label_accuracy"] == 1.0
    assert report["oracle"]["CA-SDRi"] == pytest.approx(_hand_ca_sdri(test_set, oracle), abs=1e-3)
    # Three labels per soundscape: correct only where the reference holds three classes too.
    references = _labels_by_soundscape(test_set / "oracle_target")
    tags = read_tags(tagged / "tags.csv")
    correct = [set(tags[name]) == labels for name, labels in references.items()]
    assert report["tagger"]["label_accuracy"] == pytest.approx(np.mean(correct))
