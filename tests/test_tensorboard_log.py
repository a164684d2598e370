"""TensorBoard logs of training: tag names, and the report page that tells where they are and how to open them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import planned_jobs, run_snakemake

from seldflow import tensorboard_log
from seldflow.report import write_tensorboard_page
from seldflow.tensorboard_log import TrainingLog, scalar_tag, tensorboard_dir, wait_past_event_files


def test_metrics_columns_become_grouped_tags() -> None:
    assert scalar_tag("epoch") is None  # the step
    assert scalar_tag("train_loss") == "loss/train" and scalar_tag("val_loss") == "loss/validation"
    assert scalar_tag("val_F") == "validation/F" and scalar_tag("val_SELD") == "validation/SELD"
    assert scalar_tag("lr") == "learning_rate"
    assert tensorboard_dir("results/x/model/state") == Path("results/x/model/state/tensorboard")


def earlier_event_file(state_dir: Path, seconds_ahead: int) -> Path:
    """An earlier writer's (empty) event file stamped ``seconds_ahead`` of now, whose other name fields sort after
    any host name, so that only a later second can put another file after it."""
    folder = tensorboard_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events.out.tfevents.{int(time.time()) + seconds_ahead:010d}.~.0.0"
    path.write_bytes(b"")
    return path


def test_a_resumed_run_s_event_file_sorts_after_the_files_already_there(tmp_path: Path) -> None:
    """TensorBoard reads event files in name order; a quick resume's file must come last, or the killed run's
    epochs are read after the purge that should hide them. Here the earlier file is stamped a second ahead."""
    earlier = earlier_event_file(tmp_path, seconds_ahead=1)
    log = TrainingLog(tmp_path, first_epoch=2)
    log.log_epoch({"epoch": 2, "train_loss": 0.5})
    log.close()
    names = sorted(path.name for path in tensorboard_dir(tmp_path).iterdir())
    assert len(names) == 2 and names[0] == earlier.name


def test_an_event_file_stamped_far_ahead_is_not_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    earlier_event_file(tmp_path, seconds_ahead=3600)

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"waited {seconds} s for a clock an hour ahead")

    monkeypatch.setattr(tensorboard_log.time, "sleep", no_sleep)
    wait_past_event_files(tensorboard_dir(tmp_path))


def test_report_page_names_the_folder_and_the_command(tmp_path: Path) -> None:
    page = tmp_path / "report" / "tensorboard.html"
    write_tensorboard_page("results/a<b/model/state/tensorboard", page)
    text = page.read_text()
    assert "tensorboard --logdir results/a&lt;b/model/state/tensorboard" in text
    assert "<b/" not in text  # the path is escaped, not markup
    first = page.read_bytes()
    write_tensorboard_page("results/a<b/model/state/tensorboard", page)
    assert page.read_bytes() == first  # reproducible: the path alone decides the page


def test_report_rule_writes_the_page(tiny_workdir: Path) -> None:
    result = run_snakemake(tiny_workdir, "-n", "results/tiny/report/tensorboard.html")
    assert planned_jobs(result)["report"] == 1
