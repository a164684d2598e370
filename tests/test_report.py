"""Report figures: written from the stage outputs they describe; bad inputs are named."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest

from seldflow.errors import InputError
from seldflow.labels import write_labels
from seldflow.report import plot_azimuth_tracks, plot_classwise_f, plot_training_curves, summarise_experiments


def _is_png(path: Path) -> bool:
    image = matplotlib.image.imread(path)
    return image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_training_curves_need_the_metric_columns(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,train_loss,val_loss,val_F\n1,0.1,0.12,0.2\n2,0.08,0.1,0.3\n")
    plot_training_curves(metrics, tmp_path / "curves.png")
    assert _is_png(tmp_path / "curves.png")

    metrics.write_text("epoch,train_loss\n1,0.1\n")
    with pytest.raises(InputError, match="field 'val_loss'"):
        plot_training_curves(metrics, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_classwise_f_needs_thirteen_values(tmp_path: Path) -> None:
    scores = tmp_path / "metrics.json"
    scores.write_text(json.dumps({"F": 0.3, "classwise_F": [0.3] * 12 + [None]}))
    plot_classwise_f(scores, tmp_path / "classwise.png")
    assert _is_png(tmp_path / "classwise.png")

    scores.write_text(json.dumps({"F": 0.3, "classwise_F": [0.3] * 5}))
    with pytest.raises(InputError, match="classwise_F"):
        plot_classwise_f(scores, tmp_path / "bad.png")


def test_azimuth_tracks_plot_the_busiest_clips_and_need_their_predictions(tmp_path: Path) -> None:
    refs, preds = tmp_path / "ref", tmp_path / "pred"
    for k in range(3):
        events = [[f, k, 0, 10 * k, 100, 0] for f in range(10 * (k + 1))]
        write_labels(refs / f"clip{k}.csv", events)
        write_labels(preds / f"clip{k}.csv", events[::2])
    plot_azimuth_tracks(refs, preds, tmp_path / "tracks.png", n_clips=2)
    assert _is_png(tmp_path / "tracks.png")

    (preds / "clip2.csv").unlink()  # the busiest clip, so it is plotted
    with pytest.raises(InputError, match=r"clip2\.csv: prediction missing"):
        plot_azimuth_tracks(refs, preds, tmp_path / "bad.png", n_clips=1)


def test_summary_ranks_by_f_then_doa_error(tmp_path: Path) -> None:
    scores = {"a": (0.40, 20.0), "b": (0.55, 25.0), "c": (0.40, 15.0), "d": (0.0, None)}
    paths = {}
    for name, (f, doae) in scores.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps({"F": f, "DOAE": doae, "RDE": 0.3}))
    table = summarise_experiments(paths, dict.fromkeys(scores, "seldnet"), tmp_path / "summary.csv")
    assert list(table["experiment"]) == ["b", "c", "a", "d"]
    assert (tmp_path / "summary.csv").read_text().splitlines()[0] == "rank,experiment,model,F,DOAE,RDE"

    paths["a"].write_text(json.dumps({"F": 0.4}))
    with pytest.raises(InputError, match="field 'DOAE'"):
        summarise_experiments(paths, dict.fromkeys(scores, "seldnet"), tmp_path / "again.csv")
