"""S5 inference stage: tag each soundscape, query the separator with the detected classes, write the estimates.

For every ``<soundscape>.wav`` of the input folder (sorted by name): a Stage-1 detector's class probabilities go
through the baseline's selection rule (:func:`seldflow.s5.tagging.select_labels`: classes with p >= threshold, else
the most probable one, at most three), the separator receives those up to three queries in one pass, and every
non-silent estimate is written as ``<soundscape>_<Label>.wav`` (mono, the soundscape's sample rate), the
submission format. With ``oracle_dir`` the labels are read from the oracle targets' file names instead, which gives
the separator's own ceiling (the "oracle labels" column of the papers).

The detector is whatever its checkpoint holds (:data:`DETECTORS`): the baseline tagger (sigmoid of its logits) or
the second-place system's fine-tuned SED (its attention-pooled clip probabilities) - the first two columns of that
system's Table 1. A guided separator's own Stage-2 SED runs inside the separator, whatever chose the queries.
``inference_iterations`` sets the pass count of an iterative separator (the inference-iteration grid).

``tags.csv`` beside the estimates records, per soundscape, the chosen labels and every class probability, for the
report's tagger confusion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.io import atomic_dir, read_audio, write_audio
from seldflow.s5.files import TAGS_FILE, oracle_labels, source_file_name, write_tags
from seldflow.s5.tagging import select_labels
from seldflow.s5.train import load_s5_checkpoint, model_from_s5_checkpoint
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
    """Class probabilities [C] of one soundscape from the baseline tagger (its logits through a sigmoid)."""
    with torch.no_grad():
        return torch.sigmoid(tagger(torch.from_numpy(mixture)[None]))[0].numpy()


def detect_soundscape(sed: torch.nn.Module, mixture: np.ndarray) -> np.ndarray:
    """Class probabilities [C] of one soundscape from a sound event detector (its clip-level output)."""
    with torch.no_grad():
        return sed(torch.from_numpy(mixture)[None]).weak[0].numpy()


# Checkpoint kind of a Stage-1 detector -> its class probabilities for one soundscape [C, N].
DETECTORS: dict[str, Callable[[torch.nn.Module, np.ndarray], np.ndarray]] = {
    "tagger": tag_soundscape,
    "sed": detect_soundscape,
}


def load_detector(path: str | Path, sample_rate: int) -> tuple[torch.nn.Module, str]:
    """The Stage-1 detector (a :data:`DETECTORS` kind) of a checkpoint trained at ``sample_rate``, and its kind: its
    mel bands are fixed for the rate it saw, so a detector from data at another rate would run without complaint
    and tag wrongly."""
    kind = load_s5_checkpoint(path)["kind"]
    if kind not in DETECTORS:
        raise InputError(path, f"holds a {kind}, not a detector ({', '.join(DETECTORS)})", field="kind")
    detector, checkpoint = model_from_s5_checkpoint(path, kind)
    if int(checkpoint["sample_rate"]) != sample_rate:
        raise InputError(
            path,
            f"{kind} trained at {checkpoint['sample_rate']} Hz, the separator at {sample_rate} Hz",
            field="sample_rate",
        )
    return detector, kind


def set_inference_iterations(separator: torch.nn.Module, count: int | None, where: str | Path) -> None:
    """Run ``count`` passes of an iterative separator (its own default when None)."""
    if count is None:
        return
    if not hasattr(separator, "inference_iterations"):
        raise InputError(where, f"separator {type(separator).__name__} does not iterate", field="inference_iterations")
    if int(count) != count or count < 1:
        raise ValueError(f"inference_iterations must be a positive integer, got {count!r}")
    separator.inference_iterations = int(count)


def infer_s5(
    soundscape_dir: str | Path,
    separator_checkpoint: str | Path,
    out_dir: str | Path,
    *,
    detector_checkpoint: str | Path | None = None,
    oracle_dir: str | Path | None = None,
    threshold: float = 0.5,
    inference_iterations: int | None = None,
) -> None:
    """Write the estimates of every soundscape of ``soundscape_dir`` to ``out_dir`` (replaced as a whole).

    Exactly one of ``detector_checkpoint`` (a tagger's or SED's estimated labels) and ``oracle_dir`` (reference
    labels) is given.
    """
    if (detector_checkpoint is None) == (oracle_dir is None):
        raise ValueError("give either a detector checkpoint or an oracle folder")
    files = soundscape_files(soundscape_dir)
    separator, checkpoint = model_from_s5_checkpoint(separator_checkpoint, "separator")
    set_inference_iterations(separator, inference_iterations, separator_checkpoint)
    sample_rate = int(checkpoint["sample_rate"])
    # A soundscape with another channel count than the separator's input is an error naming the file, not a
    # shape error deep inside the network.
    channels = getattr(separator, "in_channels", None)
    detector, kind = load_detector(detector_checkpoint, sample_rate) if detector_checkpoint else (None, None)
    oracle = oracle_labels(oracle_dir, [f.stem for f in files]) if oracle_dir else {}
    with atomic_dir(out_dir) as tmp:
        rows = []
        for path in tqdm(files, desc="separating", unit="soundscape"):
            mixture = read_audio(path, sample_rate=sample_rate, channels=channels)  # [C, N], rate checked
            if detector is not None:
                probabilities = DETECTORS[kind](detector, mixture)
                labels = tuple(label for label in select_labels(probabilities, threshold=threshold) if label != SILENCE)
            else:
                probabilities = np.full(len(LABELS), np.nan)
                labels = oracle[path.stem]
            for label, estimate in separate_soundscape(separator, mixture, labels).items():
                write_audio(tmp / source_file_name(path.stem, label), estimate[None], sample_rate, subtype="FLOAT")
            rows.append((path.stem, labels, probabilities))
        write_tags(tmp / TAGS_FILE, rows)
