"""DOAnet augment stage: the 2-source overlap augmentation of the training folds (``augment_files.py``), one
audio format at a time.

The mixing itself is :func:`seldflow.tau_nigens2020.overlap_augment` (pairs of single-source scenes of one fold
and room, ``sox --combine mix``, metadata concatenated so the first scene's source fills slot 0). The new scenes go
to a folder tree of their own, ``<out_root>/<fmt>_dev`` and ``<out_root>/metadata_dev``, laid out as the dataset,
so the features stage reads them like any split; experiments with ``augment: true`` train on them beside the
originals. It works on the embedded dataset as on TAU-NIGENS 2020, whose layout it shares.
"""

from __future__ import annotations

import os

from seldflow.tau_nigens2020 import AUGMENT_FOLDS, audio_folder, metadata_folder, overlap_augment


def augment_format(
    root: str | os.PathLike[str], fmt: str, out_root: str | os.PathLike[str], *, multiplier: int, seed: int | None
) -> list[str]:
    """Mix the single-source training scenes of ``root`` in format ``fmt`` into ``out_root``; the new stems."""
    return overlap_augment(
        audio_folder(root, fmt),
        metadata_folder(root),
        audio_folder(out_root, fmt),
        metadata_folder(out_root),
        folds=AUGMENT_FOLDS,
        multiplier=multiplier,
        seed=seed,
    )
