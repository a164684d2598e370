"""TensorBoard logs of training: tag names, and the report page that tells where they are and how to open them."""

from __future__ import annotations

from pathlib import Path

from helpers import planned_jobs, run_snakemake

from seldflow.report import write_tensorboard_page
from seldflow.tensorboard_log import scalar_tag, tensorboard_dir


def test_metrics_columns_become_grouped_tags() -> None:
    assert scalar_tag("epoch") is None  # the step
    assert scalar_tag("train_loss") == "loss/train" and scalar_tag("val_loss") == "loss/validation"
    assert scalar_tag("val_F") == "validation/F" and scalar_tag("val_SELD") == "validation/SELD"
    assert scalar_tag("lr") == "learning_rate"
    assert tensorboard_dir("results/x/model/state") == Path("results/x/model/state/tensorboard")


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
