"""The S5 mixture generator against a plain numpy rendering of the documented Task 4 recipe, on a tiny bank."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seldflow.s5.bank import read_dev_bank, read_rooms
from seldflow.s5.embedded import make_s5_bank
from seldflow.s5.generator import GeneratorSettings, S5Generator
from seldflow.s5.soundscapes import read_descriptions, sample_descriptions, write_soundscapes
from seldflow.s5.vocabulary import SILENCE
from seldflow.synthesize.sofa import write_sofa

RATE = 8000
CLASSES = ("AlarmClock", "Buzzer", "Cough", "Speech")
INTERFERERS = ("Engine", "Siren")
TAPS = 800  # 0.1 s impulse responses
PEAK_AT = 200  # channel-0 peak of every test IR (25 ms)
SETTINGS = GeneratorSettings(sample_rate=RATE, duration=2.0)


def _write(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(audio).T, RATE, subtype="FLOAT")


def _test_irs(rng: np.random.Generator, positions: int) -> np.ndarray:
    """[M, 4, TAPS]: a delta of 1 at PEAK_AT on channel 0 over a decaying tail that starts before the window."""
    t = np.arange(TAPS)
    irs = 0.2 * rng.standard_normal((positions, 4, TAPS)) * np.exp(-t / 300.0)
    irs[:, 0, PEAK_AT] = 1.0
    return irs.astype(np.float32)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("s5tree")
    rng = np.random.default_rng(0)
    for label in CLASSES:
        for k, seconds in enumerate((0.3, 1.2, 3.0)):  # the 3 s clip is longer than the soundscape
            _write(
                root / "sound_event/train" / label / f"{label}_{k}.wav", 0.5 * rng.standard_normal(int(seconds * RATE))
            )
    for label in INTERFERERS:
        _write(root / "interference/train" / label / f"{label}_0.wav", 0.3 * rng.standard_normal(int(0.8 * RATE)))
    _write(root / "noise/train/long.wav", 0.1 * rng.standard_normal((4, int(3.5 * RATE))))
    _write(root / "noise/train/short.wav", 0.1 * rng.standard_normal((4, int(0.7 * RATE))))
    for name in ("a", "b"):
        write_sofa(
            root / f"room_ir/train/{name}.sofa", _test_irs(rng, 3), rng.standard_normal((3, 3)), RATE, room_name=name
        )
    return root


@pytest.fixture(scope="module")
def generator(tree: Path) -> S5Generator:
    bank = read_dev_bank(tree, "train", sample_rate=RATE, classes=CLASSES)
    return S5Generator(bank, read_rooms(tree / "room_ir/train", sample_rate=RATE), SETTINGS)


# --- an independent rendering of the recipe: np.convolve, explicit loops ----------------------------------------


def _ir(tree: Path, room: str, index: int) -> np.ndarray:
    import netCDF4

    with netCDF4.Dataset(tree / "room_ir/train" / room) as ds:
        ir = np.asarray(ds.variables["Data.IR"][index], dtype=np.float64)
    return ir / np.mean([np.sqrt(np.sum(ch**2)) for ch in ir])


def _reference(tree: Path, metadata: dict) -> dict:
    n = metadata["n_samples"]
    out = {"wet": [], "dry": {}, "noise": None, "gain": []}
    for event in metadata["events"]:
        data, _ = sf.read(str(tree / event["file"]), dtype="float64", always_2d=True)
        data = data.T[:, event["offset"] : event["offset"] + event["n_samples"]]
        if event["role"] == "noise":
            reps = int(np.ceil(n / data.shape[1]))
            noise = np.concatenate([data] * reps, axis=1)[:, :n]
            out["noise"] = noise * np.sqrt(10 ** (metadata["ref_db"] / 10) / np.mean(noise**2))
            continue
        clip = data[0] / np.max(np.abs(data[0]))
        ir = _ir(tree, metadata["room"], event["ir_index"])
        wet = np.stack([np.convolve(clip, ch) for ch in ir])
        gain = np.sqrt(10 ** ((metadata["ref_db"] + event["snr"]) / 10) / np.mean(wet**2))
        placed = np.zeros((ir.shape[0], n))
        end = min(n, event["onset"] + wet.shape[1])
        placed[:, event["onset"] : end] = gain * wet[:, : end - event["onset"]]
        out["wet"].append((event, placed, gain * wet))
        if event["role"] == "target":
            window = np.zeros(TAPS)
            low, high = PEAK_AT - int(6 * RATE / 1000), PEAK_AT + int(50 * RATE / 1000)
            window[low:high] = ir[0, low:high]
            dry = gain * np.convolve(clip, window)
            dry_placed = np.zeros(n)
            dry_placed[event["onset"] : end] = dry[: end - event["onset"]]
            out["dry"][event["label"]] = dry_placed
    return out


def test_counts_ranges_and_order(generator: S5Generator) -> None:
    seen_targets, seen_interferers = set(), set()
    for seed in range(40):
        metadata = generator.sample(np.random.default_rng(seed))
        roles = [event["role"] for event in metadata["events"]]
        targets = [event for event in metadata["events"] if event["role"] == "target"]
        labels = [event["label"] for event in targets]
        assert 1 <= len(targets) <= 3 and 1 <= roles.count("interferer") <= 2 and roles.count("noise") == 1
        assert len(set(labels)) == len(labels)
        assert metadata["labels"] == [*labels, *[SILENCE] * (3 - len(labels))]
        assert [e["onset"] for e in targets] == sorted(e["onset"] for e in targets)
        for event in metadata["events"]:
            if event["role"] != "noise":
                assert event["onset"] >= 0 and event["onset"] + event["n_samples"] <= metadata["n_samples"]
                lo, hi = (5, 20) if event["role"] == "target" else (0, 15)
                assert lo <= event["snr"] <= hi
        seen_targets.add(len(targets))
        seen_interferers.add(roles.count("interferer"))
    assert seen_targets == {1, 2, 3} and seen_interferers == {1, 2}


def test_long_clip_is_cut_to_the_soundscape_at_a_random_offset(generator: S5Generator) -> None:
    offsets = set()
    for seed in range(60):
        for event in generator.sample(np.random.default_rng(seed))["events"]:
            if event["file"].endswith("_2.wav"):  # the 3 s clips
                assert event["n_samples"] == 2 * RATE and event["onset"] == 0
                assert 0 <= event["offset"] <= RATE
                offsets.add(event["offset"])
    assert len(offsets) > 3


def test_render_matches_the_reference_recipe(tree: Path, generator: S5Generator) -> None:
    checked_power = 0
    for seed in range(8):
        metadata = generator.sample(np.random.default_rng(seed))
        ref = _reference(tree, metadata)
        parts = generator.render_parts(metadata)
        mix = generator.render(metadata)
        assert 10 * np.log10(np.mean(parts.noise**2)) == pytest.approx(-50.0, abs=1e-6)
        np.testing.assert_allclose(parts.noise, ref["noise"], rtol=1e-9, atol=1e-12)
        expected_mix = ref["noise"] + sum(placed for _, placed, _ in ref["wet"])
        np.testing.assert_allclose(mix.mixture, expected_mix, rtol=1e-5, atol=1e-7)
        rendered = [*parts.wet_targets, *parts.wet_interferers]  # metadata order: targets by onset, interferers
        assert len(rendered) == len(ref["wet"])
        for wet, (event, placed, full) in zip(rendered, ref["wet"], strict=True):
            np.testing.assert_allclose(wet, placed, rtol=1e-7, atol=1e-12)
            if event["onset"] + full.shape[1] <= metadata["n_samples"]:  # the whole wet signal fits
                support = wet[:, event["onset"] : event["onset"] + full.shape[1]]
                assert 10 * np.log10(np.mean(support**2)) == pytest.approx(-50 + event["snr"], abs=0.1)
                checked_power += 1
        for slot, label in enumerate(mix.labels):
            if label == SILENCE:
                assert not mix.targets[slot].any()
            else:
                np.testing.assert_allclose(mix.targets[slot], ref["dry"][label], rtol=1e-5, atol=1e-8)
    assert checked_power > 5


def test_dry_target_keeps_only_the_direct_path_window(tree: Path, generator: S5Generator) -> None:
    metadata = generator.sample(np.random.default_rng(3))
    mix = generator.render(metadata)
    event = next(e for e in metadata["events"] if e["role"] == "target")
    ir = _ir(tree, metadata["room"], event["ir_index"])
    data, _ = sf.read(str(tree / event["file"]), dtype="float64")
    clip = data[event["offset"] : event["offset"] + event["n_samples"]]
    clip = clip / np.max(np.abs(clip))
    # the whole channel-0 response would give a different reference: the window matters
    full = np.convolve(clip, ir[0])[: metadata["n_samples"] - event["onset"]]
    slot = mix.labels.index(event["label"])
    segment = mix.targets[slot][event["onset"] : event["onset"] + full.size]
    ratio = np.dot(segment, full) / np.dot(full, full)
    assert np.linalg.norm(segment - ratio * full) > 0.05 * np.linalg.norm(segment)


def test_json_round_trip_is_bit_exact_and_sampling_is_seeded(generator: S5Generator) -> None:
    a = generator.sample(np.random.default_rng(11))
    assert a == generator.sample(np.random.default_rng(11))
    assert a != generator.sample(np.random.default_rng(12))
    first, again = generator.render(a), generator.render(json.loads(json.dumps(a)))
    assert first.mixture.dtype == np.float32 and first.mixture.shape == (4, 2 * RATE)
    assert first.targets.shape == (3, 2 * RATE) and first.labels == tuple(a["labels"])
    assert np.array_equal(first.mixture, again.mixture) and np.array_equal(first.targets, again.targets)


def test_room_at_another_rate_is_refused(tree: Path, generator: S5Generator) -> None:
    rooms = read_rooms(tree / "room_ir/train", sample_rate=RATE)
    with pytest.raises(ValueError, match="16000 Hz"):
        S5Generator(generator.bank, rooms, GeneratorSettings(sample_rate=16000, duration=2.0))
    with pytest.raises(ValueError, match=r"room 'a\.sofa' is at 8000 Hz"):
        S5Generator(
            dataclasses.replace(generator.bank, sample_rate=16000),
            rooms,
            GeneratorSettings(sample_rate=16000, duration=2.0),
        )


def test_soundscape_writer_layout_and_rebuild(tmp_path: Path, generator: S5Generator) -> None:
    descriptions = sample_descriptions(generator, 3, seed=5)
    index = write_soundscapes(tmp_path / "test", generator, descriptions)
    entries = json.loads(index.read_text())
    oracle = sorted(p.name for p in (tmp_path / "test/oracle_target").iterdir())
    expected = sorted(
        f"soundscape_{k:05d}_{label}.wav"
        for k, d in enumerate(descriptions)
        for label in d["labels"]
        if label != SILENCE
    )
    assert oracle == expected
    assert [e["ref_event"] for e in entries] == [d["labels"] for d in descriptions]
    for entry, description in zip(entries, read_descriptions(index), strict=True):
        name = entry["soundscape"]
        audio, rate = sf.read(str(tmp_path / "test/soundscape" / f"{name}.wav"), dtype="float32", always_2d=True)
        rebuilt = generator.render(description)
        assert rate == RATE and np.array_equal(audio.T, rebuilt.mixture)
        for slot, label in enumerate(rebuilt.labels):
            if label != SILENCE:
                target, _ = sf.read(str(tmp_path / "test/oracle_target" / f"{name}_{label}.wav"), dtype="float32")
                assert np.array_equal(target, rebuilt.targets[slot])


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.*")}


def test_embedded_bank_is_seeded_and_feeds_the_generator(tmp_path: Path) -> None:
    kwargs = dict(
        seed=3,
        sample_rate=RATE,
        clips_per_class={"train": 1},
        rooms_per_split={"train": 1},
        noise_per_split={"train": 1},
        max_seconds=1.0,
        noise_seconds=3.0,
        ir_seconds=0.05,
    )
    make_s5_bank(tmp_path / "a", **kwargs)
    make_s5_bank(tmp_path / "b", **kwargs)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    bank = read_dev_bank(tmp_path / "a", "train", sample_rate=RATE)
    assert len(bank.target_labels) == 18 and len(bank.interferer_labels) == 3
    rooms = read_rooms(tmp_path / "a/room_ir/train", sample_rate=RATE)
    mix = S5Generator(bank, rooms, SETTINGS).generate(np.random.default_rng(0))
    assert mix.mixture.shape == (4, 2 * RATE) and np.all(np.isfinite(mix.mixture))


def test_on_offsets_span_each_wet_target(generator: S5Generator) -> None:
    """Onset = the event's onset; offset = onset + excerpt + response - 1 samples, cut at the end (wet extent)."""
    checked_tail = 0
    for seed in range(12):
        metadata = generator.sample(np.random.default_rng(seed))
        targets = [event for event in metadata["events"] if event["role"] == "target"]
        n = metadata["n_samples"]
        expected = {
            e["label"]: [e["onset"] / RATE, min(e["onset"] + e["n_samples"] + TAPS - 1, n) / RATE] for e in targets
        }
        assert metadata["on_offset"] == expected
        parts = generator.render_parts(metadata)
        for wet, event in zip(parts.wet_targets, targets, strict=True):
            on, off = (round(v * RATE) for v in expected[event["label"]])
            assert not wet[:, :on].any() and not wet[:, off:].any()
            assert np.abs(wet[:, off - 1]).max() > 0  # the last sample of the extent belongs to the event
            checked_tail += off < n
        # a description without the key (the official validation metadata) gets the same extents
        bare = {key: value for key, value in metadata.items() if key != "on_offset"}
        assert generator.on_offsets(bare) == expected
        assert generator.render(json.loads(json.dumps(bare))).metadata["on_offset"] == expected
    assert checked_tail > 3
