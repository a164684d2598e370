"""ADPIT loss: hand-computed values, zero loss for a perfect output, permutation invariance, truncation."""

from __future__ import annotations

import pytest
import torch
from helpers import stereo_target

from seldflow.loss import ADPITLoss


def target_of(rows: list[list[int]], n_frames: int = 2) -> torch.Tensor:
    """ADPIT target (1, frames, 6, 4, 13) of CSV rows frame, class, source, azimuth, distance_cm, onscreen."""
    return torch.from_numpy(stereo_target(rows, n_frames=n_frames))[None]


def output_of(tracks: dict[tuple[int, int, int], tuple[float, float, float]], n_frames: int = 2) -> torch.Tensor:
    """Output (1, frames, 117) with (x, y, dist) set at (frame, track, class), zero elsewhere."""
    output = torch.zeros(1, n_frames, 3, 3, 13)
    for (frame, track, cls), values in tracks.items():
        output[0, frame, track, :, cls] = torch.tensor(values)
    return output.reshape(1, n_frames, 117)


def test_single_event_against_silence() -> None:
    # One event (x=1, y=0, 2 m) duplicated on 3 tracks: squared error 1 + 0 + 4 per track, mean over 9 elements
    # = 15/9 for that class, averaged over 13 classes of one frame.
    loss = ADPITLoss()(output_of({}, n_frames=1), target_of([[0, 5, 0, 0, 200, 0]], n_frames=1))
    assert loss.item() == pytest.approx((15 / 9) / 13)


def test_two_events_pick_the_best_duplicate() -> None:
    # B0 = (1, 0, 1 m) at 0 degrees, B1 = (0, 1, 1 m) at 90 degrees. Output tracks 0 and 1 are exact and track
    # 2 is silent: the best permutation duplicates either event on track 2, error (1 + 0 + 1) / 9 either way.
    target = target_of([[0, 2, 0, 0, 100, 0], [0, 2, 1, 90, 100, 0]], n_frames=1)
    output = output_of({(0, 0, 2): (1.0, 0.0, 1.0), (0, 1, 2): (0.0, 1.0, 1.0)}, n_frames=1)
    assert ADPITLoss()(output, target).item() == pytest.approx((2 / 9) / 13, abs=1e-6)


def perfect_output(target: torch.Tensor) -> torch.Tensor:
    """Output that reproduces each (frame, class)'s active group: A on all tracks, B0 B1 B1, or C0 C1 C2."""
    accdoa = target[0, :, :, :1] * target[0, :, :, 1:]  # (T, 6, 3, C)
    active = target[0, :, :, 0]  # (T, 6, C)
    output = torch.zeros(target.shape[1], 3, 3, 13)
    for frame in range(target.shape[1]):
        for cls in range(13):
            if active[frame, 3, cls]:
                tracks = (3, 4, 5)
            elif active[frame, 1, cls]:
                tracks = (1, 2, 2)
            else:
                tracks = (0, 0, 0)
            for out_track, dummy in enumerate(tracks):
                output[frame, out_track, :, cls] = accdoa[frame, dummy, :, cls]
    return output.reshape(1, target.shape[1], 117)


def mixed_target() -> torch.Tensor:
    rows = [
        [0, 1, 0, 30, 150, 0],  # frame 0: one event of class 1
        [0, 4, 0, -60, 120, 0],  # two of class 4
        [0, 4, 1, 45, 300, 0],
        [1, 7, 0, 10, 100, 0],  # frame 1: three of class 7
        [1, 7, 1, -10, 200, 0],
        [1, 7, 2, 80, 250, 0],
    ]
    return target_of(rows)


def test_perfect_output_has_zero_loss() -> None:
    target = mixed_target()
    assert ADPITLoss()(perfect_output(target), target).item() == pytest.approx(0.0, abs=1e-7)


def test_swapping_same_class_dummy_tracks_changes_nothing() -> None:
    target = mixed_target()
    output = torch.rand(1, 2, 117) * 2 - 1
    swapped = target.clone()
    swapped[:, :, [1, 2]] = target[:, :, [2, 1]]  # B0 <-> B1
    swapped[:, :, [3, 4, 5]] = target[:, :, [5, 3, 4]]  # C0 C1 C2 -> C2 C0 C1
    loss = ADPITLoss()
    assert loss(output, swapped).item() == pytest.approx(loss(output, target).item(), rel=1e-6)


@pytest.mark.parametrize("cls", [1, 4, 7, 10])  # group A, B, C active, and an inactive class
def test_permuting_the_output_tracks_of_one_class_changes_nothing(cls: int) -> None:
    torch.manual_seed(0)
    target = mixed_target()
    output = torch.rand(1, 2, 117) * 2 - 1
    tracks = output.reshape(1, 2, 3, 3, 13).clone()
    tracks[..., cls] = tracks[:, :, [2, 0, 1], :, cls]
    loss = ADPITLoss()
    assert loss(tracks.reshape(1, 2, 117), target).item() == pytest.approx(loss(output, target).item(), rel=1e-6)


def test_wrong_track_order_without_permutation_freedom_costs() -> None:
    """Sanity check of the above: swapping x and y (not tracks) of the perfect output is penalised."""
    target = mixed_target()
    perfect = perfect_output(target).reshape(1, 2, 3, 3, 13)
    broken = perfect.clone()
    broken[:, :, :, [0, 1]] = perfect[:, :, :, [1, 0]]
    assert ADPITLoss()(broken.reshape(1, 2, 117), target).item() > 1e-3


def test_frames_are_truncated_to_the_shorter_sequence() -> None:
    target = mixed_target()
    output = torch.rand(1, 2, 117)
    loss = ADPITLoss()
    assert loss(output[:, :1], target).item() == pytest.approx(loss(output[:, :1], target[:, :1]).item())
    assert loss(output, target[:, :1]).item() == pytest.approx(loss(output[:, :1], target[:, :1]).item())


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        ADPITLoss()(torch.zeros(1, 2, 116), mixed_target())
    with pytest.raises(ValueError, match="does not match"):  # 4 elements per track need 3 * 4 * 13 outputs
        ADPITLoss()(torch.zeros(1, 2, 117), torch.zeros(1, 2, 6, 5, 13))
    with pytest.raises(ValueError, match="target must be"):
        ADPITLoss()(torch.zeros(1, 2, 117), torch.zeros(1, 2, 5, 4, 13))
