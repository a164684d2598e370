"""SELD methods: targets from events, losses, decoding back to events, and every network with every method."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL

from seldflow.errors import ConfigError
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_ELEVATION, EV_FRAME, EV_TRACK, event_table
from seldflow.models import build_model
from seldflow.tasks import build_task
from seldflow.tasks.seld_methods import METHODS, get_method

N_CLASSES = 12


def events(*rows: tuple[float, float, float, float, float]) -> np.ndarray:
    """Event table from (frame, class, track, azimuth, elevation) rows, no distance."""
    array = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return event_table(*array.T, np.full(len(array), np.nan))


def direction(azimuth: float, elevation: float) -> np.ndarray:
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])


def test_accdoa_target_is_the_activity_scaled_unit_vector() -> None:
    method = get_method("accdoa")
    target = method.targets(events((2, 5, 0, 90, 30)), n_frames=4, n_classes=N_CLASSES)
    assert target.shape == (4, 3, N_CLASSES)
    np.testing.assert_allclose(target[2, :, 5], direction(90, 30), atol=1e-7)
    assert np.count_nonzero(np.abs(target) > 1e-6) == 2  # x = cos(90°) vanishes; y and z carry the direction
    np.testing.assert_allclose(np.linalg.norm(target[2, :, 5]), 1.0, atol=1e-6)


def test_accdoa_keeps_the_last_of_two_same_class_events() -> None:
    target = get_method("accdoa").targets(events((0, 1, 0, 0, 0), (0, 1, 1, 180, 0)), 1, N_CLASSES)
    np.testing.assert_allclose(target[0, :, 1], direction(180, 0), atol=1e-7)


def test_multiaccdoa_3d_target_fills_the_adpit_groups() -> None:
    method = get_method("maccdoa")
    target = method.targets(events((0, 3, 0, 0, 0), (0, 3, 1, 90, 45), (1, 4, 0, -90, -30)), 2, N_CLASSES)
    assert target.shape == (2, 6, 4, N_CLASSES)
    assert target[0, 1:3, 0, 3].tolist() == [1.0, 1.0] and target[0, 0, 0, 3] == 0.0  # two events: group B
    np.testing.assert_allclose(target[0, 2, 1:, 3], direction(90, 45), atol=1e-7)
    np.testing.assert_allclose(target[1, 0, 1:, 4], direction(-90, -30), atol=1e-7)  # one event: group A


TRACK_WISE = ["einv2", "einv2_agg1", "einv2_agg2", "seddoa", "seddoa_agg1", "seddoa_agg2"]


@pytest.mark.parametrize("name", ["maccdoa", "accdoa", "maccdoa_dist", *TRACK_WISE])
def test_a_perfect_output_has_minimal_loss_and_decodes_to_the_events(name: str) -> None:
    """Encode events into the output a perfect network would give; the loss is minimal and decoding inverts it."""
    method = get_method(name)
    table = events((0, 2, 0, 30, 10), (0, 7, 1, -120, -40), (3, 2, 0, 150, 0))
    table[:, -1] = 2.0  # distance, used by maccdoa_dist only
    target = method.targets(table, 4, N_CLASSES)
    output = perfect_output(name, target)
    loss = method.loss()(torch.from_numpy(output)[None], torch.from_numpy(target)[None]).item()
    assert loss < 1e-3 if name in TRACK_WISE else loss == pytest.approx(0.0, abs=1e-12)
    decoded = method.decode(output, N_CLASSES)
    key = np.lexsort((decoded[:, EV_CLASS], decoded[:, EV_FRAME]))
    decoded = decoded[key]
    np.testing.assert_array_equal(decoded[:, [EV_FRAME, EV_CLASS]], [[0, 2], [0, 7], [3, 2]])
    np.testing.assert_allclose(decoded[:, [EV_AZIMUTH, EV_ELEVATION]], [[30, 10], [-120, -40], [150, 0]], atol=1e-4)
    if name == "maccdoa_dist":
        np.testing.assert_allclose(decoded[:, -1], 2.0)


def perfect_output(name: str, target: np.ndarray) -> np.ndarray:
    """The output layout's values that reproduce ``target`` exactly (logits of ±20 for EINV2)."""
    frames = target.shape[0]
    if name == "accdoa":
        return target.reshape(frames, -1).astype(np.float64)
    if name in TRACK_WISE:
        sed = np.where(target[:, :, :N_CLASSES] > 0, 20.0, -20.0).reshape(frames, -1)
        return np.concatenate([sed, target[:, :, N_CLASSES:].reshape(frames, -1)], axis=1)
    # multi-ACCDOA: the active group's dummy tracks on the three output tracks (A A A, B0 B1 B1, C0 C1 C2)
    scaled = target[:, :, :1] * target[:, :, 1:]  # (T, 6, E, C)
    active = target[:, :, 0]  # (T, 6, C)
    out = np.zeros((frames, 3, scaled.shape[2], N_CLASSES))
    for frame in range(frames):
        for cls in range(N_CLASSES):
            tracks = (3, 4, 5) if active[frame, 3, cls] else (1, 2, 2) if active[frame, 1, cls] else (0, 0, 0)
            for track, dummy in enumerate(tracks):
                out[frame, track, :, cls] = scaled[frame, dummy, :, cls]
    return out.reshape(frames, -1)


def test_einv2_loss_is_invariant_to_the_track_order() -> None:
    method = get_method("einv2")
    target = method.targets(events((0, 1, 0, 0, 0), (0, 5, 1, 90, 0), (1, 3, 0, 45, 20)), 2, N_CLASSES)
    output = torch.randn(1, 2, method.layout.size(N_CLASSES), generator=torch.Generator().manual_seed(0))
    swapped = target[:, [2, 0, 1]]  # the same events on other tracks
    loss = method.loss()
    assert loss(output, torch.from_numpy(target)[None]).item() == pytest.approx(
        loss(output, torch.from_numpy(swapped)[None]).item(), rel=1e-6
    )


def test_einv2_decodes_each_track_above_the_threshold() -> None:
    method = get_method("einv2")
    output = np.zeros((1, method.layout.size(N_CLASSES)))
    sed = output[:, : 3 * N_CLASSES].reshape(1, 3, N_CLASSES)
    sed[:] = -10.0
    sed[0, 1, 4] = 0.5  # sigmoid 0.62
    output[0, 3 * N_CLASSES + 3 : 3 * N_CLASSES + 6] = direction(-45, 0)
    decoded = method.decode(output, N_CLASSES)
    assert decoded[:, [EV_FRAME, EV_CLASS, EV_TRACK]].tolist() == [[0, 4, 1]]
    assert decoded[0, EV_AZIMUTH] == pytest.approx(-45.0)
    assert len(method.decode(output, N_CLASSES, sed_threshold=0.7)) == 0


def test_multiaccdoa_3d_merges_tracks_closer_than_unify_deg() -> None:
    method = get_method("maccdoa")
    tracks = np.zeros((1, 3, 3, N_CLASSES))
    tracks[0, 0, :, 6] = direction(10, 0)
    tracks[0, 1, :, 6] = direction(10, 12)  # 12 degrees above track 0: one event
    tracks[0, 2, :, 6] = direction(100, 0)  # far away: its own event
    decoded = method.decode(tracks.reshape(1, -1), N_CLASSES)
    assert decoded[:, EV_TRACK].tolist() == [0, 2]
    assert decoded[0, EV_ELEVATION] == pytest.approx(6.0, abs=0.1)  # the average of the merged pair
    assert len(method.decode(tracks.reshape(1, -1), N_CLASSES, unify_deg=10.0)) == 3


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("kind_channels", "model"), [(7, "seldnet"), (10, "seldnet")])
def test_every_method_trains_through_a_network(method: str, kind_channels: int, model: str) -> None:
    """FOA (7 channels) and MIC (10) features through a network emitting each method's layout; gradients flow."""
    task = build_task({"name": "seld", "label_format": "dcase2021", "method": method})
    net = build_model(model, kind_channels, **{**TINY_MODEL, **task.model_args()})
    output = net(torch.randn(2, kind_channels, 251, 16))
    assert output.shape == (2, 50, get_method(method).layout.size(task.n_classes))
    rows = events((0, 1, 0, 20, 10), (10, 11, 1, -60, 0))
    target = torch.from_numpy(np.stack([task.targets(rows, 50)] * 2))
    loss = task.loss()(output, target)
    loss.backward()
    assert math.isfinite(loss.item()) and all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_unknown_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown method 'mACCDOA'"):
        build_task({"name": "seld", "method": "mACCDOA"})


def _track_output(sed_logits: list[list[float]], doa: list[list[float]]) -> torch.Tensor:
    """A one-frame ``(1, 1, 3 * (C + 3))`` EINV2-layout output from per-track logits and raw DOA vectors."""
    values = [value for track in (*sed_logits, *doa) for value in track]
    return torch.tensor([[values]], dtype=torch.float64)


def _one_event_target(n_classes: int, cls: int, azimuth: float, elevation: float) -> torch.Tensor:
    method = get_method("seddoa")
    return torch.from_numpy(method.targets(events((0, cls, 0, azimuth, elevation)), 1, n_classes))[None]


def test_seddoa_loss_counts_the_doa_of_every_track_einv2_only_the_active_ones() -> None:
    """All logits 0 (BCE ln 2 everywhere); DOA (1, 0, 0) on output track 1, zero elsewhere; one event at (1, 0, 0)."""
    target = _one_event_target(2, 0, 0.0, 0.0)
    output = _track_output([[0.0, 0.0]] * 3, [[0, 0, 0], [1, 0, 0], [0, 0, 0]])
    # SEDDOA: 0.5 BCE + 0.5 MSE over all 9 DOA values; the order putting the event on track 1 matches exactly.
    assert get_method("seddoa").loss()(output, target).item() == pytest.approx(0.5 * math.log(2))
    # With the event kept on track 0, the MSE would be (1 + 1) / 9: the order is chosen by the whole loss.
    seddoa_weights = get_method("seddoa", {"sed_weight": 0.0, "doa_weight": 1.0}).loss()
    assert seddoa_weights(output, target).item() == pytest.approx(0.0)
    # EINV2: BCE + MSE over the xyz of the one active track, which the best order also matches.
    assert get_method("einv2").loss()(output, target).item() == pytest.approx(math.log(2))
    silent = _track_output([[0.0, 0.0]] * 3, [[0, 0, 0]] * 3)
    assert get_method("seddoa").loss()(silent, target).item() == pytest.approx(0.5 * math.log(2) + 0.5 / 9)
    assert get_method("einv2").loss()(silent, target).item() == pytest.approx(math.log(2) + 1 / 3)


def test_agg2_sums_the_tracks_agg1_keeps_them_apart() -> None:
    """Two tracks each predict class 0 at half activity towards the event: their sum is the ACCDOA target."""
    target = _one_event_target(2, 0, 0.0, 0.0)
    output = _track_output([[0.0, -100.0], [0.0, -100.0], [-100.0, -100.0]], [[1, 0, 0], [5, 0, 0], [0, 1, 0]])
    for method in ("seddoa_agg2", "einv2_agg2"):
        assert get_method(method).loss()(output, target).item() == pytest.approx(0.0, abs=1e-12)
    # AGG1, best order: (0.5 - 1)^2 on the event's track and 0.5^2 on the other, over 3 tracks x 2 classes x xyz.
    for method in ("seddoa_agg1", "einv2_agg1"):
        assert get_method(method).loss()(output, target).item() == pytest.approx(0.5 / 18)


def test_aggregated_losses_use_the_unit_direction_scaled_by_the_activity() -> None:
    """sigmoid(ln 3) = 0.75 times the normalised (3, 0, 0): 0.25 short of the event's unit vector."""
    target = _one_event_target(2, 1, 90.0, 0.0)  # class 1 towards +y
    output = _track_output(
        [[-100.0, math.log(3)], [-100.0, -100.0], [-100.0, -100.0]], [[0, 3, 0], [1, 0, 0], [0, 0, 1]]
    )
    assert get_method("seddoa_agg1").loss()(output, target).item() == pytest.approx(0.25**2 / 18)
    assert get_method("seddoa_agg2").loss()(output, target).item() == pytest.approx(0.25**2 / 6)


def test_seddoa_decodes_only_the_most_likely_class_of_a_track() -> None:
    n_classes = 4
    sed = [[-10.0, 2.0, 1.0, -10.0], [-10.0] * 4, [0.1, -10.0, -10.0, 0.3]]  # sigmoids 0.88, 0.73 | - | 0.52, 0.57
    doa = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]
    output = _track_output(sed, doa).numpy()[0]
    seddoa = get_method("seddoa").decode(output, n_classes)
    assert seddoa[:, [EV_FRAME, EV_CLASS, EV_TRACK]].tolist() == [[0, 1, 0], [0, 3, 2]]
    np.testing.assert_allclose(seddoa[:, [EV_AZIMUTH, EV_ELEVATION]], [[90.0, 0.0], [0.0, -90.0]], atol=1e-9)
    assert get_method("seddoa").decode(output, n_classes, sed_threshold=0.6)[:, EV_CLASS].tolist() == [1]
    einv2 = get_method("einv2").decode(output, n_classes)  # every class above the threshold
    assert einv2[:, [EV_CLASS, EV_TRACK]].tolist() == [[0, 2], [1, 0], [2, 0], [3, 2]]


@pytest.mark.parametrize("method", ["seddoa", "seddoa_agg1", "seddoa_agg2"])
def test_seddoa_round_trips_dcase2021_rows(tmp_path: Path, method: str) -> None:
    """A hand-written DCASE2021 file -> targets -> the output a perfect network gives -> the same CSV rows."""
    reference = tmp_path / "ref.csv"
    reference.write_text("0,3,0,30,10\n0,7,1,-150,-20\n2,3,0,90,45\n2,3,1,-90,0\n2,11,2,180,-60\n4,0,0,0,0\n")
    task = build_task({"name": "seld", "label_format": "dcase2021", "method": method, "n_classes": N_CLASSES})
    rows = task.read_labels(reference, n_frames=5)
    output = perfect_output(method, task.targets(rows, 5))
    prediction = tmp_path / task.prediction_name("pred")
    task.write_prediction(prediction, task.decode(output))
    decoded = task.read_labels(prediction, n_frames=5)
    np.testing.assert_array_equal(decoded[:, [EV_FRAME, EV_CLASS, EV_TRACK]], rows[:, [EV_FRAME, EV_CLASS, EV_TRACK]])
    np.testing.assert_allclose(decoded[:, [EV_AZIMUTH, EV_ELEVATION]], rows[:, [EV_AZIMUTH, EV_ELEVATION]], atol=1e-4)
