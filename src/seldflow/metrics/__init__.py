"""Official SELD metrics by name (the DCASE scorers, DOAnet's tracking metric): what each reads, how many classes
it assumes and how it scores.

The score stage and the CLI look metrics up here instead of branching on names, so adding a metric is one entry:

========== ============================================================ ======= ======= ==================
name       scorer                                                       classes average label files
========== ============================================================ ======= ======= ==================
dcase2021  segment-based, 600-frame files (:mod:`.dcase2021`)           12      micro   5-column, no header
dcase2022  segment-based, length from the reference (:mod:`.dcase2021`) 13      macro   5-column, no header
dcase2023  as dcase2022; STARSS23's distance column accepted, ignored   13      macro   5 or 6 columns
dcase2024  frame-based with distance errors (:mod:`.dcase2024`)         13      macro   6-column, cm
dcase2025  frame-based stereo, folded azimuth (:mod:`.dcase2025`)       13      macro   DCASE2025 CSV
doa-mot    class-agnostic DOA tracking, CLEAR-MOT (:mod:`.doa_mot`)     none    pooled  DCASE2020 5-column
========== ============================================================ ======= ======= ==================

A reference clip without a prediction is an error by default (``missing``); for ``doa-mot`` it is a recording
without predictions, as its contract says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from seldflow.errors import ConfigError
from seldflow.metrics import dcase2021, dcase2024, dcase2025, doa_mot
from seldflow.metrics.common import FileReader, FilesReader, read_label_dir


class Tally(Protocol):
    """A metric's counts over clips handed in a chunk at a time (in sorted name order), for metrics whose counts
    add up over clips: :func:`seldflow.score.score_dirs` reads and adds :attr:`chunk` clips at a time, so scoring a
    folder holds one chunk's tables, not the folder's."""

    chunk: int

    def add(self, references: Sequence[np.ndarray], predictions: Sequence[np.ndarray | None]) -> None:
        """The next clips' reference and prediction tables (None: a clip without predictions)."""

    def report(self) -> dict[str, Any]:
        """The report of every clip added, as the metric's ``compute`` gives it for all of them at once."""


@dataclass(frozen=True)
class Metric:
    """One official metric: its label reader, default class count and scoring function.

    ``read_files`` reads many label files at once with ``read_file``'s results and errors (the folder reader uses
    it). ``compute(references, predictions, *, n_classes, missing, ref_source, pred_source, **options)`` returns the
    report; ``options`` names the keyword options it takes beyond those (thresholds, averaging, extras);
    ``missing`` is what a reference clip without a prediction means when the caller does not say
    (:data:`seldflow.metrics.common.MISSING_MODES`). ``tally`` (``**options -> Tally``), where the metric's
    counts add up over clips, lets folders be scored a chunk of clips at a time with the same report.
    """

    name: str
    summary: str
    n_classes: int
    read_file: FileReader
    read_files: FilesReader
    compute: Callable[..., dict[str, Any]]
    options: frozenset[str]
    missing: str = "error"
    tally: Callable[..., Tally] | None = None

    def open_tally(self, **options: Any) -> Tally:
        """A new :class:`Tally` for ``options`` (checked as :meth:`score` checks them); a metric without one is a
        :class:`ValueError` (only metrics whose counts add up over clips have one)."""
        if self.tally is None:
            raise ValueError(f"metric {self.name} is scored from all its clips at once, not tallied")
        self._check_options(options)
        return self.tally(**options)

    def _check_options(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - self.options)
        if unknown:
            supported = ", ".join(sorted(self.options)) or "none"
            raise ConfigError(f"metric {self.name}", unknown[0], f"not an option of this metric (options: {supported})")

    def read_dir(
        self, path: str | Path, *, n_classes: int | None = None, reference: bool = True
    ) -> dict[str, tuple[np.ndarray, str]]:
        """Stem -> (table, split folder) of every label file in ``path`` and its immediate sub-folders."""
        classes = self.n_classes if n_classes is None else n_classes
        return read_label_dir(path, self.read_files, n_classes=classes, reference=reference)

    def score(
        self,
        references: Mapping[str, np.ndarray],
        predictions: Mapping[str, np.ndarray],
        *,
        n_classes: int | None = None,
        missing: str | None = None,
        ref_source: str = "references",
        pred_source: str = "predictions",
        **options: Any,
    ) -> dict[str, Any]:
        """Score tables keyed by clip name; an option this metric does not have is a :class:`ConfigError`.

        ``missing`` defaults to the metric's own :attr:`missing`.
        """
        self._check_options(options)
        return self.compute(
            references,
            predictions,
            n_classes=self.n_classes if n_classes is None else n_classes,
            missing=self.missing if missing is None else missing,
            ref_source=ref_source,
            pred_source=pred_source,
            **options,
        )


def _segment_metric(edition: str, summary: str) -> Metric:
    conventions = dcase2021.EDITIONS[edition]
    return Metric(
        name=edition,
        summary=summary,
        n_classes=conventions.n_classes,
        read_file=partial(dcase2021.read_file, edition=edition),
        read_files=partial(dcase2021.read_files, edition=edition),
        compute=partial(dcase2021.compute_metrics, edition=edition),
        options=frozenset({"doa_threshold", "average"}),
    )


METRICS: dict[str, Metric] = {
    "dcase2021": _segment_metric("dcase2021", "DCASE2021 segment-based SELD metric (micro, 12 classes)"),
    "dcase2022": _segment_metric("dcase2022", "DCASE2022 segment-based SELD metric (macro, 13 classes)"),
    "dcase2023": _segment_metric("dcase2023", "DCASE2023 segment-based SELD metric (macro, 13 classes)"),
    "dcase2024": Metric(
        name="dcase2024",
        summary="DCASE2024 frame-based SELD metric with distance errors (macro, 13 classes)",
        n_classes=dcase2024.N_CLASSES,
        read_file=dcase2024.read_file,
        read_files=dcase2024.read_files,
        compute=dcase2024.compute_metrics,
        options=frozenset({"doa_threshold", "dist_threshold", "reldist_threshold", "average"}),
    ),
    "dcase2025": Metric(
        name="dcase2025",
        summary="DCASE2025 stereo SELD metric (frame-based, folded azimuth, macro, 13 classes)",
        n_classes=dcase2025.N_CLASSES,
        read_file=dcase2025.read_file,
        read_files=dcase2025.read_files,
        compute=dcase2025.score_report,
        options=frozenset({"doa_threshold", "dist_threshold", "reldist_threshold", "average", "onscreen", "jackknife"}),
    ),
    doa_mot.METRIC_NAME: Metric(
        name=doa_mot.METRIC_NAME,
        summary=doa_mot.SUMMARY,
        n_classes=doa_mot.CLASS_AGNOSTIC,
        read_file=doa_mot.read_file,
        read_files=doa_mot.read_files,
        compute=doa_mot.compute_metrics,
        options=frozenset({"doa_threshold"}),
        missing="empty",
        tally=doa_mot.Tally,
    ),
}
DEFAULT_METRIC = "dcase2025"


def get_metric(name: str) -> Metric:
    """The registered metric called ``name``; a :class:`ConfigError` listing the known names otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ConfigError(
            "seldflow.metrics", "metric", f"unknown metric {name!r} (known: {', '.join(METRICS)})"
        ) from None
