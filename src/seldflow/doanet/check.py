"""DOAnet check stage: the dataset and a given Hnet checked as a whole, before any DOAnet training.

A cheap first job reads what the later stages would otherwise trip over after minutes of work, and fails with one
:class:`~seldflow.errors.InputError` naming the file (row) and field:

* every recording of the used splits and formats is paired with its metadata and has a 24-kHz 4-channel header
  (:func:`seldflow.tau_nigens2020.find_recordings`);
* every metadata row is valid (frame, class, track integers, azimuth in [-180, 180], elevation in [-90, 90]:
  :func:`seldflow.tau_nigens2020.read_metadata`) and no frame holds more sources than ``n_max``, the network's
  slots (:func:`seldflow.doanet.labels.doa_targets`, which the training stage uses for the same rows);
* a given Hnet checkpoint (``doanet.hnet.weights``) associates ``n_max`` directions
  (:func:`seldflow.doanet.hnet.load_frozen_hnet`).

The report lists the recordings of each split; later stages read the folders themselves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from seldflow.doanet.hnet import load_frozen_hnet
from seldflow.doanet.labels import doa_targets
from seldflow.errors import InputError
from seldflow.formats.events import EV_FRAME
from seldflow.io import atomic_file
from seldflow.tau_nigens2020 import audio_folder, find_recordings, metadata_folder, read_metadata, split_folds


def check_labels(path: str | os.PathLike[str], n_max: int) -> int:
    """Validate one metadata file (rows, angle ranges, at most ``n_max`` sources per frame); returns its rows."""
    events = read_metadata(path)
    n_frames = int(events[:, EV_FRAME].max()) + 1 if len(events) else 0
    doa_targets(events, n_frames, n_max, path=path)
    return len(events)


def check_dataset(
    root: str | os.PathLike[str],
    *,
    formats: Sequence[str],
    splits: Sequence[str],
    n_max: int,
    hnet_weights: str | os.PathLike[str] | None,
    out_json: str | os.PathLike[str],
) -> dict[str, Any]:
    """Check the ``splits`` of ``root`` in every format, and the Hnet weights when given; write the report."""
    if hnet_weights:
        load_frozen_hnet(hnet_weights, n_max)
    report: dict[str, Any] = {"n_max": n_max, "splits": {}}
    for split in splits:
        stems: list[str] | None = None
        for fmt in formats:
            recordings = find_recordings(audio_folder(root, fmt), metadata_folder(root), folds=split_folds(split))
            found = [recording.stem for recording in recordings]
            if stems is not None and found != stems:
                missing = sorted(set(stems) ^ set(found))[0]
                raise InputError(audio_folder(root, fmt), f"scene {missing} is not in every audio format")
            stems = found
        for recording in recordings:
            check_labels(recording.metadata, n_max)
        report["splits"][split] = stems
    with atomic_file(out_json) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
    return report
