"""Score stage: score prediction folders against reference folders with an official DCASE metric.

The SELD metrics are looked up by name in :data:`seldflow.metrics.METRICS` (``dcase2025`` by default;
``dcase2021`` to ``dcase2024`` for the earlier challenges), which also says how to read their label files and how
many classes they assume. This module only finds the files, selects the reference splits that were predicted, and
writes the report; the metrics themselves live in :mod:`seldflow.metrics`. ``ca-sdri`` (DCASE2025 Task 4) scores
separated waveforms, not label files, so the command hands it to
:func:`seldflow.metrics.ca_sdri.score_ca_sdri` with the mixture folder it alone needs (``--mixtures``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from seldflow.errors import ConfigError, InputError, SeldflowError
from seldflow.io import atomic_file
from seldflow.metrics import DEFAULT_METRIC, METRICS, Metric, ca_sdri, get_metric
from seldflow.metrics.common import MISSING_MODES, check_missing, check_pairing, label_file_listing

# Kept importable from here for callers written before the metrics moved to seldflow.metrics.dcase2025.

AVERAGES = ("macro", "micro")


def load_label_dir(
    path: str | Path, *, metric: str = DEFAULT_METRIC, n_classes: int | None = None, reference: bool = True
) -> dict[str, np.ndarray]:
    """Read every ``*.csv`` directly in ``path`` and in its immediate sub-folders (split folders), keyed by stem.

    Files are read in ``metric``'s format and validated by its reader: for DCASE2025, references strictly by
    :func:`seldflow.labels.read_labels` (frames unbounded), predictions (``reference=False``) as leniently as the
    official scorer reads them, by :func:`seldflow.metrics.dcase2025.read_prediction`. Stems must be unique
    across sub-folders because clips are matched by stem. Files not ending in ``.csv`` and deeper folders are not
    read.
    """
    tables = get_metric(metric).read_dir(path, n_classes=n_classes, reference=reference)
    return {stem: table for stem, (table, _) in tables.items()}


def score_dirs(
    ref_dir: str | Path | Sequence[str | Path],
    pred_dir: str | Path | Sequence[str | Path],
    *,
    metric: str = DEFAULT_METRIC,
    n_classes: int | None = None,
    missing: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Score folders of prediction CSVs against folders of reference CSVs (flat or with split sub-folders).

    Each side takes one folder or a list of them (e.g. one per test split). Only reference splits (folders) that
    hold at least one predicted clip are scored; ``settings.splits`` lists them and ``settings.metric`` names the
    metric. ``n_classes`` and ``missing`` default to the metric's; ``options`` are the metric's own (thresholds,
    ``average``, and for DCASE2025 ``onscreen`` and ``jackknife``, see :func:`seldflow.metrics.dcase2025.score_report`).
    """
    chosen = get_metric(metric)
    ref_dirs = [ref_dir] if isinstance(ref_dir, (str, Path)) else list(ref_dir)
    pred_dirs = [pred_dir] if isinstance(pred_dir, (str, Path)) else list(pred_dir)
    sources = {"ref_source": ", ".join(map(str, ref_dirs)), "pred_source": ", ".join(map(str, pred_dirs))}
    if chosen.tally is not None:
        report, splits = _score_by_chunks(chosen, ref_dirs, pred_dirs, n_classes, missing, sources, options)
    else:
        read = partial(chosen.read_dir, n_classes=n_classes, reference=False)
        preds_by_name = {stem: rows for stem, (rows, _) in _merge(pred_dirs, read).items()}
        read = partial(chosen.read_dir, n_classes=n_classes, reference=True)
        refs_by_name, splits = _predicted_splits(_merge(ref_dirs, read), preds_by_name)
        report = chosen.score(refs_by_name, preds_by_name, n_classes=n_classes, missing=missing, **sources, **options)
    report["settings"] = {"metric": chosen.name, **report.get("settings", {}), "splits": splits}
    return report


def _score_by_chunks(
    metric: Metric,
    ref_dirs: Sequence[str | Path],
    pred_dirs: Sequence[str | Path],
    n_classes: int | None,
    missing: str | None,
    sources: Mapping[str, str],
    options: Mapping[str, Any],
) -> tuple[dict[str, Any], list[str]]:
    """The report of a metric with a tally (:class:`seldflow.metrics.Tally`) and the scored splits, its files read
    a chunk of clips at a time in sorted name order, so memory stays flat in the number of files.

    The same report as reading every file first; for input with several faults the first one reported can differ:
    names (duplicates, predictions without a reference, missing predictions) are checked before any file is read.
    """
    tally = metric.open_tally(**options)
    classes = metric.n_classes if n_classes is None else n_classes
    files, splits = _paired_files(ref_dirs, pred_dirs, metric.missing if missing is None else missing, sources)
    for start in range(0, len(files.names), tally.chunk):
        refs, preds = files.chunk(start, start + tally.chunk)
        found = metric.read_files([path for path in preds if path is not None], n_classes=classes, reference=False)
        found.reverse()
        tally.add(  # the tables held by the tally alone, which frees them as soon as it has gathered their rows
            metric.read_files(refs, n_classes=classes, reference=True),
            [None if path is None else found.pop() for path in preds],
        )
    return tally.report(), splits


@dataclass(frozen=True)
class _PairedFiles:
    """The label files of the clips to score, in sorted name order: the names as one array of encoded stems and
    each side's folder as an index into ``folders`` (-1: no prediction file), so that a folder of tens of
    thousands of clips is scored in the memory of its chunk (see :class:`~seldflow.metrics.common.LabelListing`)."""

    names: np.ndarray
    folders: tuple[str, ...]
    ref_folder: np.ndarray
    pred_folder: np.ndarray

    def chunk(self, start: int, stop: int) -> tuple[list[str | None], list[str | None]]:
        """The reference files and prediction files (None: none) of clips ``start`` to ``stop``."""
        names = [os.fsdecode(name) for name in self.names[start:stop].tolist()]
        return self._paths(self.ref_folder[start:stop], names), self._paths(self.pred_folder[start:stop], names)

    def _paths(self, folders: np.ndarray, names: list[str]) -> list[str | None]:
        return [
            None if folder < 0 else _csv(self.folders[folder], name)
            for folder, name in zip(folders.tolist(), names, strict=True)
        ]


def _paired_files(
    ref_dirs: Sequence[str | Path], pred_dirs: Sequence[str | Path], missing: str, sources: Mapping[str, str]
) -> tuple[_PairedFiles, list[str]]:
    """The files to score and the reference splits they come from: as :func:`_scored_splits` and
    :func:`~seldflow.metrics.common.paired_names` choose them, from listings of the folders."""
    check_missing(missing)
    predictions, references = label_file_listing(pred_dirs), label_file_listing(ref_dirs)
    predicted, position = predictions.contains(references.stems)
    scored = np.unique(references.folder[predicted])
    in_scored = np.isin(references.folder, scored)
    referenced, reference = references.contains(predictions.stems)
    check_pairing(
        predictions.names(~(referenced & in_scored[reference])),
        references.names(in_scored & ~predicted),
        missing=missing,
        **sources,
    )
    chosen = in_scored & (predicted | (missing == "empty"))
    offset = len(references.folders)  # prediction folders follow the reference folders
    return (
        _PairedFiles(
            names=references.stems[chosen],
            folders=references.folders + predictions.folders,
            ref_folder=references.folder[chosen],
            pred_folder=np.where(predicted, predictions.folder[position] + offset, -1)[chosen],
        ),
        sorted(references.folders[index] for index in scored.tolist()),
    )


def _csv(folder: str, stem: str) -> str:
    return os.path.join(folder, f"{stem}.csv")


Entry = TypeVar("Entry")


def _merge(paths: Sequence[str | Path], read: Callable[[str | Path], dict[str, Entry]]) -> dict[str, Entry]:
    """Stem -> entry of several folders, each read by ``read`` into a new dict (an entry is a split folder or a
    (table, split) pair); a stem in two folders is an error."""
    merged: dict[str, Entry] = {}
    for path in paths:
        found = read(path)
        if not merged:
            merged = found  # the first folder's dict itself: no copy of thousands of entries
            continue
        for stem, entry in found.items():
            if stem in merged:
                raise InputError(path, f"duplicate clip name {stem!r}: also in {_split(merged[stem])}")
            merged[stem] = entry
    return merged


def _split(entry: Any) -> str:
    """The split folder of an entry of :func:`_merge`: the entry itself, or the second item of a (table, split)."""
    return entry if isinstance(entry, str) else entry[1]


def _scored_splits(split_of: Mapping[str, Any], predictions: Mapping[str, Any]) -> list[str]:
    """The split folders that hold at least one predicted clip, sorted (``split_of``: stem -> entry of
    :func:`_merge`).

    A reference root such as ``metadata_dev/`` holds the training splits too; a split is evaluated whole or not
    at all, so inside a scored split a missing prediction is still caught by ``missing``.
    """
    return sorted({_split(entry) for stem, entry in split_of.items() if stem in predictions})


def _predicted_splits(
    references: Mapping[str, tuple[np.ndarray, str]], predictions: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """References (stem -> table) of the split folders that hold at least one predicted clip (see
    :func:`_scored_splits`), and those splits."""
    scored = _scored_splits(references, predictions)
    kept = {stem: rows for stem, (rows, split) in references.items() if split in scored}
    return kept, scored


def to_json(metrics: Mapping[str, Any]) -> str:
    """Serialise a metrics dict as strict JSON: NaN and infinities (an undefined error, no threshold) become null."""
    return json.dumps(_json_ready(metrics), indent=2, allow_nan=False)


def write_metrics(path: str | Path, metrics: Mapping[str, Any]) -> None:
    """Write a metrics report as strict JSON, atomically (a failed run leaves no stale or partial file)."""
    with atomic_file(path) as tmp:
        tmp.write_text(to_json(metrics) + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Declare the ``score`` command's options on ``parser`` (also used for the ``seldflow score`` subcommand).

    Metric-specific options default to ``None`` ("the metric's default") and are passed on only when given, so a
    metric without such an option rejects it instead of silently ignoring it.
    """
    summaries = {name: metric.summary for name, metric in METRICS.items()} | {ca_sdri.METRIC_NAME: ca_sdri.SUMMARY}
    metrics = "; ".join(f"{name}: {summary}" for name, summary in summaries.items())
    parser.add_argument("--metric", choices=tuple(summaries), default=DEFAULT_METRIC, help=f"metric ({metrics})")
    parser.add_argument(
        "--ref",
        required=True,
        type=Path,
        help="reference CSV folder (flat or split sub-folders); ca-sdri: the oracle <soundscape>_<Label>.wav folder",
    )
    parser.add_argument(
        "--pred",
        required=True,
        type=Path,
        help="prediction CSV folder (flat or split sub-folders); ca-sdri: the estimated <soundscape>_<Label>.wav "
        "folder",
    )
    parser.add_argument(
        "--mixtures",
        type=Path,
        help="ca-sdri only, and required there: the <soundscape>.wav mixture folder (channel 0 is the SDRi baseline)",
    )
    parser.add_argument("--classes", type=int, help="number of classes (default: the metric's, 12 for dcase2021)")
    parser.add_argument(
        "--missing",
        choices=MISSING_MODES,
        help="reference clips without a prediction: fail (default), skip like the official scorer, or score empty "
        "(the default of doa-mot; not for ca-sdri, where a soundscape without estimates scores as silent slots)",
    )
    parser.add_argument(
        "--onscreen",
        action="store_true",
        help="dcase2025: the official audio-visual mode: F and classwise_F also require the right on-screen flag; "
        "adds OnscreenAcc and the audio-only F_audio, classwise_F_audio",
    )
    parser.add_argument("--jackknife", action="store_true", help="dcase2025: add leave-one-clip-out 95%% intervals")
    parser.add_argument(
        "--doa-threshold", type=float, help="DOA error threshold in degrees (default 20); doa-mot: the CLEAR-MOT gate"
    )
    parser.add_argument(
        "--dist-threshold", type=float, help="absolute distance error threshold: cm for dcase2025, m for dcase2024"
    )
    parser.add_argument("--reldist-threshold", type=float, help="relative distance error threshold (default 1.0)")
    parser.add_argument("--average", choices=AVERAGES, help="class averaging (default: the metric's)")
    return parser


def _score_waveforms(args: argparse.Namespace) -> dict[str, Any]:
    """``--metric ca-sdri``: score WAV folders; the label-file options have no meaning there and are refused."""
    given = {"--classes": args.classes, "--missing": args.missing}
    given |= {f"--{name.replace('_', '-')}": value for name, value in _given_options(args).items()}
    refused = [option for option, value in given.items() if value is not None]
    if refused:
        raise ConfigError("seldflow score", refused[0], f"not an option of metric {ca_sdri.METRIC_NAME}")
    if args.mixtures is None:
        raise ConfigError("seldflow score", "--mixtures", f"required by metric {ca_sdri.METRIC_NAME}")
    return ca_sdri.score_ca_sdri(args.mixtures, args.ref, args.pred)


def _score_label_files(args: argparse.Namespace) -> dict[str, Any]:
    """The SELD metrics: score label-file folders with the metric's options."""
    if args.mixtures is not None:
        raise ConfigError("seldflow score", "--mixtures", f"only metric {ca_sdri.METRIC_NAME} takes mixtures")
    return score_dirs(
        args.ref,
        args.pred,
        metric=args.metric,
        n_classes=args.classes,
        missing=args.missing,
        **_given_options(args),
    )


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The metric options set on the command line (flags only when on)."""
    values = {
        "doa_threshold": args.doa_threshold,
        "dist_threshold": args.dist_threshold,
        "reldist_threshold": args.reldist_threshold,
        "average": args.average,
        "onscreen": args.onscreen or None,
        "jackknife": args.jackknife or None,
    }
    return {name: value for name, value in values.items() if value is not None}


def run(args: argparse.Namespace) -> int:
    """Execute parsed ``score`` options: one JSON object on stdout; exit status 1 on bad input or options (the
    convention of every ``seldflow`` subcommand; 2 is left to argparse for a rejected command line)."""
    try:
        report = _score_waveforms(args) if args.metric == ca_sdri.METRIC_NAME else _score_label_files(args)
    except SeldflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(to_json(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m seldflow.score`` (the same as ``seldflow score``)."""
    parser = add_arguments(argparse.ArgumentParser(prog="seldflow score", description=__doc__.splitlines()[0]))
    return run(parser.parse_args(argv))


def _json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


if __name__ == "__main__":
    sys.exit(main())
