"""Multi-ACCDOA decoding, batched prediction and the inference stage on small hand-made feature files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, constant_model, write_feature_file

from seldflow.errors import InputError
from seldflow.infer import infer_split
from seldflow.labels import CSV_COLUMNS, read_labels
from seldflow.models import build_model
from seldflow.models.runtime import predict_features
from seldflow.tasks import build_task


def decode_multiaccdoa(output: np.ndarray, **thresholds: float) -> np.ndarray:
    """The stereo DCASE2025 task's decoding of one clip's output into CSV rows."""
    return build_task(None).decode(output, thresholds)


def output_with(tracks: dict[tuple[int, int, int], tuple[float, float, float]], n_frames: int = 3) -> np.ndarray:
    """(frames, 117) output with (azimuth_deg, activity_norm, distance_m) at (frame, track, class)."""
    output = np.zeros((n_frames, 3, 3, 13))
    for (frame, track, cls), (azimuth, norm, distance) in tracks.items():
        rad = math.radians(azimuth)
        output[frame, track, :, cls] = (norm * math.cos(rad), norm * math.sin(rad), distance)
    return output.reshape(n_frames, 117)


def test_single_active_track() -> None:
    rows = decode_multiaccdoa(output_with({(1, 2, 6): (-37.0, 0.9, 1.234)}))
    assert rows.dtype == np.int64
    np.testing.assert_array_equal(rows, [[1, 6, 2, -37, 123, 0]])


def test_tracks_at_or_below_the_threshold_are_silent() -> None:
    output = output_with({(0, 0, 1): (10.0, 0.5, 1.0), (1, 1, 2): (50.0, 0.3, 2.0)})
    assert decode_multiaccdoa(output).shape == (0, 6)
    assert len(decode_multiaccdoa(output, activity_threshold=0.4)) == 1


def test_close_tracks_are_merged_by_averaging() -> None:
    output = output_with({(0, 0, 3): (10.0, 0.8, 1.0), (0, 1, 3): (20.0, 0.6, 2.0)})
    x = (0.8 * math.cos(math.radians(10)) + 0.6 * math.cos(math.radians(20))) / 2
    y = (0.8 * math.sin(math.radians(10)) + 0.6 * math.sin(math.radians(20))) / 2
    expected_azimuth = round(math.degrees(math.atan2(y, x)))
    np.testing.assert_array_equal(decode_multiaccdoa(output), [[0, 3, 0, expected_azimuth, 150, 0]])


def test_merging_works_across_the_rear_wrap() -> None:
    output = output_with({(0, 0, 3): (175.0, 0.8, 1.0), (0, 2, 3): (-175.0, 0.8, 1.0)})
    np.testing.assert_array_equal(decode_multiaccdoa(output), [[0, 3, 0, 180, 100, 0]])


@pytest.mark.parametrize("separation", [15.0, 40.0])
def test_tracks_at_least_unify_deg_apart_stay_separate(separation: float) -> None:
    output = output_with({(2, 0, 9): (0.0, 0.9, 1.0), (2, 1, 9): (separation, 0.9, 3.0)})
    rows = decode_multiaccdoa(output, unify_deg=15.0)
    np.testing.assert_array_equal(rows, [[2, 9, 0, 0, 100, 0], [2, 9, 1, round(separation), 300, 0]])


def test_three_active_tracks() -> None:
    far = output_with({(0, 0, 1): (-60.0, 0.9, 1.0), (0, 1, 1): (0.0, 0.9, 2.0), (0, 2, 1): (60.0, 0.9, 3.0)})
    np.testing.assert_array_equal(
        decode_multiaccdoa(far), [[0, 1, 0, -60, 100, 0], [0, 1, 1, 0, 200, 0], [0, 1, 2, 60, 300, 0]]
    )
    # One close pair (tracks 0 and 2): merged under the lower index; track 1 stays on its own.
    pair = output_with({(0, 0, 1): (30.0, 0.9, 1.0), (0, 1, 1): (-50.0, 0.9, 2.0), (0, 2, 1): (40.0, 0.9, 3.0)})
    np.testing.assert_array_equal(decode_multiaccdoa(pair), [[0, 1, 0, 35, 200, 0], [0, 1, 1, -50, 200, 0]])
    # A chain 0~1~2 (12 degrees apart each, 24 between the ends) is a single event at the mean.
    chain = output_with({(0, 0, 1): (-12.0, 0.9, 1.0), (0, 1, 1): (0.0, 0.9, 2.0), (0, 2, 1): (12.0, 0.9, 3.0)})
    np.testing.assert_array_equal(decode_multiaccdoa(chain), [[0, 1, 0, 0, 200, 0]])


def test_classes_and_frames_are_decoded_independently() -> None:
    output = output_with({(2, 0, 12): (5.0, 0.9, 1.0), (0, 0, 0): (5.0, 0.9, 1.0), (0, 1, 4): (7.0, 0.9, 0.5)})
    rows = decode_multiaccdoa(output)
    np.testing.assert_array_equal(rows, [[0, 0, 0, 5, 100, 0], [0, 4, 1, 7, 50, 0], [2, 12, 0, 5, 100, 0]])


def test_decoder_refuses_a_wrong_width() -> None:
    with pytest.raises(ValueError, match="117"):
        decode_multiaccdoa(np.zeros((50, 39)))


# ---------------------------------------------------------------------------------------------------------------
# predict_features and infer_split
# ---------------------------------------------------------------------------------------------------------------


def test_predict_features_batches_like_one_forward_pass() -> None:
    torch.manual_seed(0)
    model = build_model("seldnet", 3, **TINY_MODEL)
    model.train()
    features = np.random.default_rng(1).standard_normal((5, 3, 251, 16), dtype=np.float32)
    predicted = predict_features(model, features, batch_size=2, device="cpu")
    assert model.training  # restored after prediction
    model.eval()
    with torch.no_grad():
        direct = model(torch.from_numpy(features)).numpy()
    assert predicted.shape == (5, 50, 117)
    np.testing.assert_allclose(predicted, direct, rtol=1e-5, atol=1e-6)


def save_checkpoint(path: Path, model: torch.nn.Module, *, channels: int = 3, kind: str = "pfoa") -> None:
    torch.save(
        {
            "model_state": model.state_dict(),
            "model_name": "seldnet",
            "model_args": TINY_MODEL,
            "in_channels": channels,
            "feature_kind": kind,
            "feature_config": {},
            "epoch": 1,
            "val_metrics": {},
        },
        path,
    )


def test_infer_split_writes_one_csv_per_original_clip(tmp_path: Path) -> None:
    names = write_feature_file(tmp_path / "test.h5", n_originals=3, labelled=False)
    save_checkpoint(tmp_path / "best.pt", constant_model(active=True))
    infer_split(checkpoint=tmp_path / "best.pt", features_h5=tmp_path / "test.h5", out_dir=tmp_path / "pred")
    originals = [name for name in names if not name.endswith("_LRswap")]
    assert sorted(p.stem for p in (tmp_path / "pred").iterdir()) == originals
    expected = np.array([[frame, 3, 1, 45, 250, 0] for frame in range(50)])
    for name in originals:
        np.testing.assert_array_equal(read_labels(tmp_path / "pred" / f"{name}.csv"), expected)


def test_clips_without_detections_get_header_only_csvs(tmp_path: Path) -> None:
    write_feature_file(tmp_path / "test.h5", n_originals=2, lr_swap=False)
    save_checkpoint(tmp_path / "best.pt", constant_model(active=False))
    infer_split(checkpoint=tmp_path / "best.pt", features_h5=tmp_path / "test.h5", out_dir=tmp_path / "pred")
    files = sorted((tmp_path / "pred").iterdir())
    assert len(files) == 2
    for path in files:
        assert path.read_text() == ",".join(CSV_COLUMNS) + "\n"


def test_missing_or_corrupt_checkpoint_is_an_input_error(tmp_path: Path) -> None:
    write_feature_file(tmp_path / "test.h5", n_originals=1)
    with pytest.raises(InputError, match="checkpoint not found"):
        infer_split(checkpoint=tmp_path / "none.pt", features_h5=tmp_path / "test.h5", out_dir=tmp_path / "pred")
    (tmp_path / "bad.pt").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(InputError, match=r"bad\.pt: cannot read checkpoint"):
        infer_split(checkpoint=tmp_path / "bad.pt", features_h5=tmp_path / "test.h5", out_dir=tmp_path / "pred")
    # A pickle that needs arbitrary code: refused, without PyTorch's advice to load it with weights_only=False.
    torch.save({"model_state": {}, "extra": Path("x")}, tmp_path / "pickled.pt")
    with pytest.raises(InputError, match=r"pickled\.pt: cannot read checkpoint") as refused:
        infer_split(checkpoint=tmp_path / "pickled.pt", features_h5=tmp_path / "test.h5", out_dir=tmp_path / "pred")
    assert "weights_only" not in str(refused.value)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="missing model_state"):
        infer_split(checkpoint=tmp_path / "other.pt", features_h5=tmp_path / "test.h5", out_dir=tmp_path / "pred")
    assert not (tmp_path / "pred").exists()


def test_feature_channel_mismatch_is_an_input_error(tmp_path: Path) -> None:
    write_feature_file(tmp_path / "test.h5", n_originals=1, channels=4)
    save_checkpoint(tmp_path / "best.pt", constant_model(active=True))
    with pytest.raises(InputError, match=r"test\.h5: field 'features': has 4 feature channels"):
        infer_split(checkpoint=tmp_path / "best.pt", features_h5=tmp_path / "test.h5", out_dir=tmp_path / "pred")
    assert not (tmp_path / "pred").exists()


def test_frequency_bin_mismatch_is_an_input_error(tmp_path: Path) -> None:
    write_feature_file(tmp_path / "test.h5", n_originals=1, bins=32)
    save_checkpoint(tmp_path / "best.pt", constant_model(active=True))
    with pytest.raises(InputError, match=r"has 32 frequency bins but .*best\.pt expects 16"):
        infer_split(checkpoint=tmp_path / "best.pt", features_h5=tmp_path / "test.h5", out_dir=tmp_path / "pred")


def test_feature_kind_mismatch_is_an_input_error(tmp_path: Path) -> None:
    write_feature_file(tmp_path / "test.h5", n_originals=1, kind="logmel")
    save_checkpoint(tmp_path / "best.pt", constant_model(active=True))
    with pytest.raises(InputError, match="feature kind 'logmel' differs from 'pfoa'"):
        infer_split(checkpoint=tmp_path / "best.pt", features_h5=tmp_path / "test.h5", out_dir=tmp_path / "pred")


def test_models_that_pair_clips_get_short_batches_padded() -> None:
    model = build_model("htsat", 3, patch_size=8, embed_dim=8, depths=(2, 2, 2), heads=(1, 1, 2)).eval()
    features = np.random.default_rng(0).standard_normal((3, 3, 251, 64)).astype(np.float32)
    outputs = predict_features(model, features, batch_size=2, device="cpu")
    assert outputs.shape == (3, 50, 117)
    # The third clip ran paired with a silent clip, exactly as if the batch had been padded by hand.
    padded = np.concatenate([features[2:], np.zeros_like(features[:1])])
    with torch.inference_mode():
        expected = model(torch.from_numpy(padded)).numpy()[0]
    np.testing.assert_allclose(outputs[2], expected, rtol=1e-5, atol=1e-6)
