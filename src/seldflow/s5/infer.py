"""S5 inference stage: tag each soundscape, query the separator with the detected classes, write the estimates.

For every ``<soundscape>.wav`` of the input folder (sorted by name): the tagger's class probabilities go through
the baseline's selection rule (:func:`seldflow.s5.tagging.select_labels`: classes with p >= threshold, else the
most probable one, at most three), the separator receives those up to three queries in one pass, and every
non-silent estimate is written as ``<soundscape>_<Label>.wav`` (mono, the soundscape's sample rate), the
submission format. With ``oracle_dir`` the labels are read from the oracle targets' file names instead of the
tagger, which gives the separator's own ceiling (the "oracle labels" column of the papers).

``tags.csv`` beside the estimates records, per soundscape, the chosen labels and every class probability, for the
report's tagger confusion.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.io import atomic_dir, read_audio, write_audio
from seldflow.s5.files import TAGS_FILE, oracle_labels, source_file_name, write_tags
from seldflow.s5.tagging import select_labels
from seldflow.s5.train import model_from_s5_checkpoint
from seldflow.s5.vocabulary import LABELS, SILENCE, onehot_slots, pad_labels, source_mask


def soundscape_files(folder: str | Path) -> list[Path]:
    """The soundscapes of a folder, sorted by name; an empty folder is an error naming it."""
    files = sorted(Path(folder).glob("*.wav"))
    if not files:
        raise InputError(folder, "no soundscape (*.wav) in this folder")
    return files


def separate_soundscape(
    separator: torch.nn.Module, mixture: np.ndarray, labels: Sequence[str]
) -> dict[str, np.ndarray]:
    """Estimates of one soundscape [C, N] for its (up to three) labels, keyed by label."""
    slots = pad_labels(labels)
    queries = torch.from_numpy(onehot_slots(slots))[None]
    mask = torch.from_numpy(source_mask(slots))[None]
    with torch.no_grad():
        estimates = separator.separate(torch.from_numpy(mixture)[None], queries, mask)[0].numpy()
    return {label: estimates[slot] for slot, label in enumerate(slots) if label != SILENCE}


def tag_soundscape(tagger: torch.nn.Module, mixture: np.ndarray) -> np.ndarray:
    """Class probabilities [C] of one soundscape."""
    with torch.no_grad():
        return torch.sigmoid(tagger(torch.from_numpy(mixture)[None]))[0].numpy()


def load_tagger(path: str | Path, sample_rate: int) -> torch.nn.Module:
    """The tagger of a checkpoint trained at ``sample_rate``: its mel bands are fixed for the rate it saw, so a
    tagger from data at another rate would run without complaint and tag wrongly."""
    tagger, checkpoint = model_from_s5_checkpoint(path, "tagger")
    if int(checkpoint["sample_rate"]) != sample_rate:
        raise InputError(
            path,
            f"tagger trained at {checkpoint['sample_rate']} Hz, the separator at {sample_rate} Hz",
            field="sample_rate",
        )
    return tagger


def infer_s5(
    soundscape_dir: str | Path,
    separator_checkpoint: str | Path,
    out_dir: str | Path,
    *,
    tagger_checkpoint: str | Path | None = None,
    oracle_dir: str | Path | None = None,
    threshold: float = 0.5,
) -> None:
    """Write the estimates of every soundscape of ``soundscape_dir`` to ``out_dir`` (replaced as a whole).

    Exactly one of ``tagger_checkpoint`` (estimated labels) and ``oracle_dir`` (reference labels) is given.
    """
    if (tagger_checkpoint is None) == (oracle_dir is None):
        raise ValueError("give either a tagger checkpoint or an oracle folder")
    files = soundscape_files(soundscape_dir)
    separator, checkpoint = model_from_s5_checkpoint(separator_checkpoint, "separator")
    sample_rate = int(checkpoint["sample_rate"])
    # A soundscape with another channel count than the separator's input is an error naming the file, not a
    # shape error deep inside the network.
    channels = getattr(separator, "in_channels", None)
    tagger = load_tagger(tagger_checkpoint, sample_rate) if tagger_checkpoint else None
    oracle = oracle_labels(oracle_dir, [f.stem for f in files]) if oracle_dir else {}
    with atomic_dir(out_dir) as tmp:
        rows = []
        for path in tqdm(files, desc="separating", unit="soundscape"):
            mixture = read_audio(path, sample_rate=sample_rate, channels=channels)  # [C, N], rate checked
            if tagger is not None:
                probabilities = tag_soundscape(tagger, mixture)
                labels = tuple(label for label in select_labels(probabilities, threshold=threshold) if label != SILENCE)
            else:
                probabilities = np.full(len(LABELS), np.nan)
                labels = oracle[path.stem]
            for label, estimate in separate_soundscape(separator, mixture, labels).items():
                write_audio(tmp / source_file_name(path.stem, label), estimate[None], sample_rate, subtype="FLOAT")
            rows.append((path.stem, labels, probabilities))
        write_tags(tmp / TAGS_FILE, rows)
