"""The DCASE2025 Task 4 evaluation restated as written: the plain reference of the ``scorer ca-sdri`` row.

The official scorer (``nttcslab/dcase2025_task4_baseline``: ``src/evaluation/evaluate.py`` run on generated
waveforms, its waveform dataset class and ``src/utils.py::ca_metric`` with torchmetrics' ``signal_noise_ratio``)
does, per run:

* list the mixture folder, sort the soundscapes by name; list each target folder once and give every soundscape
  the files of that listing that *start with* its name (a scan of the whole listing per soundscape, in listing
  order), their labels the rest of the name, each asserted to be a known class: names that prefix each other
  fail that assertion;
* per soundscape, load the mixture (all channels) and every oracle and estimated file with ``librosa.load`` at the
  file's rate (asserted to be 32 kHz), pad each side with silent slots to three sources (a soundscape without
  estimate files fails there: the padding copies the shape of a first source it does not have), and make float32
  tensors;
* score it with ``ca_metric``: the TP improvements SNR(estimate) - SNR(mixture channel 0) of torch float32 SNRs
  (eps = float32 epsilon) and one zero per FP and FN, averaged; the run's value is ``np.mean`` of the soundscapes'.

:func:`official_ca_sdri` does the same steps in the same order, in one process and one soundscape at a time. Left
out: the DataLoader's worker processes and batching (which only groups soundscapes; its stacking fails when two
soundscapes of a batch hold different numbers of sources, which one at a time cannot). It shares no
code with :mod:`seldflow.metrics.ca_sdri`, so their agreement checks both; the official numbers of
``tests/data/ca_sdri_parity_official.json`` check it directly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import torch

from seldflow.s5.files import AUDIO_SUFFIX, NAME_SEPARATOR
from seldflow.s5.vocabulary import LABELS, SILENCE

# The official evaluation pads each soundscape's sources to this many slots, and asserts every file at this rate.
N_SOURCES = 3
SAMPLE_RATE = 32000


def _wav_listing(folder: Path) -> list[str]:
    """The ``.wav`` names of a folder, in listing order (unsorted), as the official code lists each folder."""
    return [name for name in os.listdir(folder) if name.endswith(AUDIO_SUFFIX)]


def _sources(listing: list[str], soundscape: str, folder: Path) -> tuple[list[str], list[Path]]:
    """The files of ``listing`` that start with the soundscape's name (a scan of it all, in listing order) and their
    labels, each asserted to be a class, as the official dataset class files them."""
    names = [name for name in listing if name.startswith(soundscape) and name.endswith(AUDIO_SUFFIX)]
    labels = [name[len(soundscape) + len(NAME_SEPARATOR) : -len(AUDIO_SUFFIX)] for name in names]
    for label, name in zip(labels, names, strict=True):
        assert label in LABELS, f'"{name}" is not a valid filename of the estimates for {soundscape}'
    return labels, [folder / name for name in names]


def _padded(labels: list[str], paths: list[Path]) -> tuple[list[str], torch.Tensor]:
    """Every file loaded (librosa, the file's rate, mono) and silent slots up to :data:`N_SOURCES`; [K, N] float32."""
    labels = list(labels)
    waves = [_load(path) for path in paths]
    for _ in range(N_SOURCES - len(labels)):
        labels.append(SILENCE)
        waves.append(np.zeros_like(waves[0]))  # no file at all: IndexError, where the official loader fails
    return labels, torch.from_numpy(np.stack(waves)).to(torch.float32)


def _load(path: Path, *, mono: bool = True) -> np.ndarray:
    """A file as the official loader reads it: ``librosa.load`` at its own rate, asserted to be the task's."""
    wave, rate = librosa.load(path, sr=None, mono=mono)
    assert rate == SAMPLE_RATE, f"sr of {path} ({rate}) is different from the target sr ({SAMPLE_RATE})"
    return wave


def _snr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """torchmetrics' ``signal_noise_ratio`` (not zero-mean) over the last axis, in the inputs' dtype and its eps."""
    eps = torch.finfo(estimate.dtype).eps
    noise = reference - estimate
    ratio = (torch.sum(reference**2, dim=-1) + eps) / (torch.sum(noise**2, dim=-1) + eps)
    return 10 * torch.log10(ratio)


def _ca_metric(
    est_labels: list[str],
    est_waves: torch.Tensor,
    ref_labels: list[str],
    ref_waves: torch.Tensor,
    mixture: torch.Tensor,
) -> float:
    """One soundscape's CA-SDRi as ``ca_metric`` takes it: TP improvements then FP and FN zeros, their mean."""
    estimates = dict(zip(est_labels, est_waves, strict=True))
    references = dict(zip(ref_labels, ref_waves, strict=True))
    tp = set(est_labels) & set(ref_labels) - {SILENCE}
    fp = set(est_labels) - tp - {SILENCE}
    fn = set(ref_labels) - tp - {SILENCE}
    result = torch.tensor([])
    if tp:
        tp_est = torch.stack([estimates[label] for label in tp])
        tp_ref = torch.stack([references[label] for label in tp])
        repeated = mixture.unsqueeze(0).repeat(len(tp), 1)
        result = torch.cat((result, _snr(tp_est, tp_ref) - _snr(repeated, tp_ref)), dim=0)
    result = torch.cat((result, torch.zeros(len(fp) + len(fn))), dim=0)
    return result.mean().item()


def official_ca_sdri(
    mixture_dir: str | os.PathLike[str], ref_dir: str | os.PathLike[str], pred_dir: str | os.PathLike[str]
) -> dict[str, Any]:
    """CA-SDRi and label accuracy of a folder of estimates, computed as the official evaluation does (module
    docstring). Returns ``CA-SDRi`` (dB), ``label_accuracy`` (a fraction; the official script prints it in
    percent) and ``n_soundscapes``. Raises where the official code does: AssertionError for names that prefix
    each other, IndexError for a soundscape without estimate files."""
    mixture_dir, ref_dir, pred_dir = Path(mixture_dir), Path(ref_dir), Path(pred_dir)
    soundscapes = sorted(name.removesuffix(AUDIO_SUFFIX) for name in _wav_listing(mixture_dir))
    ref_listing, est_listing = _wav_listing(ref_dir), _wav_listing(pred_dir)
    # All oracle targets filed first, then all estimates, as the dataset class's constructor does.
    references = [_sources(ref_listing, name, ref_dir) for name in soundscapes]
    estimates = [_sources(est_listing, name, pred_dir) for name in soundscapes]
    metrics, label_checks = [], []
    for name, reference, estimate in zip(soundscapes, references, estimates, strict=True):
        mixture = torch.from_numpy(_load(mixture_dir / f"{name}.wav", mono=False))
        ref_labels, ref_waves = _padded(*reference)
        est_labels, est_waves = _padded(*estimate)
        metrics.append(_ca_metric(est_labels, est_waves, ref_labels, ref_waves, mixture.to(torch.float32)[0]))
        label_checks.append(set(est_labels) - {SILENCE} == set(ref_labels) - {SILENCE})
    return {
        "CA-SDRi": float(np.mean(metrics)),
        "label_accuracy": float(np.sum(label_checks) / len(label_checks)),
        "n_soundscapes": len(metrics),
    }
