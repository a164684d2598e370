"""seldflow.openmp and the side-by-side rows of the benchmark (seldflow.bench.concurrency)."""

from __future__ import annotations

import pytest

from seldflow.bench.concurrency import TrainingJob, concurrency_rows, run_together, spin_environment
from seldflow.openmp import SPIN_VARIABLE, set_spin_count

# A job of the demo's network on a short input: a step takes well under a second.
TINY = TrainingJob(model="seldnet", channels=7, frames=50, mels=64, batch=2, steps=1)


def test_the_spin_count_is_a_default_a_user_setting_wins() -> None:
    environ: dict[str, str] = {}
    assert set_spin_count(1000, environ) == "1000" and environ == {SPIN_VARIABLE: "1000"}
    environ = {SPIN_VARIABLE: "50"}
    assert set_spin_count(1000, environ) == "50" and environ == {SPIN_VARIABLE: "50"}
    with pytest.raises(ValueError, match="rounds >= 0"):
        set_spin_count(-1, {})


def test_children_run_together_with_the_spin_count_they_are_given() -> None:
    together = run_together(TINY, 1, 2, spin_environment(77))
    assert [result["spin_count"] for result in together] == ["77", "77"]
    assert all(result["seconds"] > 0 for result in together)
    assert run_together(TINY, 1, 1, spin_environment(None))[0]["spin_count"] is None  # OpenMP's default


def test_concurrency_rows_compare_one_after_the_other_with_side_by_side() -> None:
    rows = concurrency_rows(TINY, 1, 1000)
    assert [row.name for row in rows] == [
        f"training side by side, {SPIN_VARIABLE}=1000 (the workflow's)",
        "training side by side, OpenMP's default spin",
    ]
    for row in rows:
        assert row.a_seconds > 0 and row.b_seconds > 0 and row.threads == "1 per job"
        assert row.a_label.startswith("one after the other (") and row.b_label.startswith("side by side (")


def test_a_failing_child_is_an_error_naming_it() -> None:
    with pytest.raises(RuntimeError, match="train_child failed"):
        run_together(TrainingJob("no_such_model", 7, 50, 64, 2, 1), 1, 1, spin_environment(None))
