"""DCASE2025 Task 4 (S5) class-aware SDR improvement (CA-SDRi) and label accuracy, on arrays or WAV folders.

The official scorer (the Task 4 baseline's ``ca_metric`` and evaluation script, with torchmetrics'
``signal_noise_ratio``) pairs estimated and oracle sources by class label only, without a permutation search:

* per soundscape, TP = estimated ∩ reference labels, FP = estimated \\ reference, FN = reference \\ estimated, with
  ``silence`` (an empty slot) left out of all three;
* every TP class scores SDRi_c = SNR(ŝ_c, s_c) − SNR(y₀, s_c), where y₀ is channel 0 of the mixture, and the
  soundscape scores Σ_TP SDRi_c / (|TP| + |FP| + |FN|): each FP and FN adds a zero term, a negative SDRi is kept;
* SNR(ŝ, s) = 10·log10((‖s‖² + eps) / (‖s − ŝ‖² + eps)): plain SNR (not zero-mean, not scale-invariant);
* the dataset value is the mean over soundscapes (dB); label accuracy is the share of soundscapes whose estimated
  label set equals the reference set exactly.

Precision: the official data loader hands torchmetrics float32 waveforms, and torchmetrics computes in the input
dtype with eps = float32 machine epsilon (:data:`EPS`, 1.1920929e-07). This module computes in float32 with that
eps too, because the eps sets a perfect estimate's value (10·log10((‖s‖² + eps) / eps), about 84 dB on short
clips; a float64 eps would shift it by ~87 dB). Sums are numpy's float32 pairwise sums, so values agree with
torch's to float32 rounding, not bit for bit (within 4e-6 dB of the official code on the seeded parity cases).
A soundscape's score is the float32 mean of its terms, as the official code takes it; the dataset mean is taken
in float64, as the official script's ``np.mean`` does.

Edge cases, as the official code behaves or where it crashes:

* no TP, FP nor FN (both label sets empty): the official mean over an empty tensor is NaN, and so is
  :func:`ca_sdri_soundscape`'s score. It cannot happen with files: every Task 4 soundscape holds 1-3 targets, and
  :func:`score_ca_sdri` rejects a soundscape without oracle files (the official loader crashes on one).
* a soundscape without any estimate file crashes the official loader; here it scores as three silent slots: all
  its reference classes are FN, so it contributes 0 dB, and it is a label miss. The report counts such
  soundscapes (``n_without_estimates``) so the case is visible.
* lengths: the official code requires every waveform of a soundscape to have the mixture's length (torch stacks
  and torchmetrics' shape check fail otherwise); there is no truncation, so a length mismatch is an input error.
* the official loader downmixes a multichannel estimate or oracle file to mono without a word; the Task 4 contract
  is mono files, so such a file is an input error here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf

from seldflow.errors import InputError
from seldflow.io import WavLayout, plain_wav_layout, read_plain_wav
from seldflow.s5.files import AUDIO_SUFFIX, NAME_SEPARATOR, split_source_name
from seldflow.s5.vocabulary import LABELS, SILENCE

METRIC_NAME = "ca-sdri"
SUMMARY = "DCASE2025 Task 4 class-aware SDR improvement (dB) and label accuracy, on WAV folders"
# torchmetrics computes in its inputs' dtype, and the official loader feeds float32 waveforms.
COMPUTE_DTYPE = np.float32
EPS = float(np.finfo(COMPUTE_DTYPE).eps)
# The mixture channel whose SNR is the baseline of the improvement (the official reference channel).
REFERENCE_CHANNEL = 0
# Samples (estimates, oracle targets and mixture rows together) read before a batch of soundscapes is scored.
BATCH_SAMPLES = 250_000


def snr_db(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Plain SNR in dB over the last axis: 10·log10((‖s‖² + eps) / (‖s − ŝ‖² + eps)), computed in float32.

    ``estimate`` (ŝ) and ``reference`` (s) must have the same shape; leading axes are a batch. Returns a float32
    array of the leading shape (0-d for two 1-D signals). Not zero-mean, not scale-invariant, eps = :data:`EPS`.
    """
    est = np.asarray(estimate, dtype=COMPUTE_DTYPE)
    ref = np.asarray(reference, dtype=COMPUTE_DTYPE)
    if est.shape != ref.shape:
        raise ValueError(f"estimate shape {est.shape} differs from reference shape {ref.shape}")
    eps = COMPUTE_DTYPE(EPS)
    noise = ref - est
    signal_power = np.sum(ref * ref, axis=-1) + eps
    noise_power = np.sum(noise * noise, axis=-1) + eps
    return COMPUTE_DTYPE(10) * np.log10(signal_power / noise_power)


def sdri_db(estimates: np.ndarray, references: np.ndarray, mixture_ch0: np.ndarray) -> np.ndarray:
    """SDRi per source: SNR(estimate, reference) − SNR(mixture channel 0, reference), float32 [K].

    ``estimates`` and ``references`` are [K, N] (row k one class), ``mixture_ch0`` is [N]; all sources are scored
    in one vectorised pass.
    """
    refs = np.asarray(references, dtype=COMPUTE_DTYPE)
    mixture = np.broadcast_to(np.asarray(mixture_ch0, dtype=COMPUTE_DTYPE), refs.shape)
    return snr_db(estimates, refs) - snr_db(mixture, refs)


@dataclass(frozen=True)
class LabelMatch:
    """The label-only pairing of one soundscape: sorted TP, FP and FN class names (silence excluded)."""

    tp: tuple[str, ...]
    fp: tuple[str, ...]
    fn: tuple[str, ...]

    @classmethod
    def of(cls, reference_labels: Iterable[str], estimated_labels: Iterable[str]) -> LabelMatch:
        ref = set(reference_labels) - {SILENCE}
        est = set(estimated_labels) - {SILENCE}
        return cls(tp=tuple(sorted(ref & est)), fp=tuple(sorted(est - ref)), fn=tuple(sorted(ref - est)))

    @property
    def labels_correct(self) -> bool:
        """The estimated label set equals the reference set (the label-accuracy criterion)."""
        return not self.fp and not self.fn


def _soundscape_result(match: LabelMatch, sdri: np.ndarray) -> tuple[float, dict[str, Any]]:
    """The soundscape's CA-SDRi (float32 mean of the TP SDRis and one zero per FP and FN) and its details."""
    penalties = np.zeros(len(match.fp) + len(match.fn), COMPUTE_DTYPE)
    terms = np.concatenate([np.asarray(sdri, dtype=COMPUTE_DTYPE), penalties])
    # The official mean over no terms at all is NaN; np.mean would say so with a warning, hence the explicit case.
    score = float(np.mean(terms)) if terms.size else float("nan")
    details = {
        "CA-SDRi": score,
        "SDRi": {label: float(value) for label, value in zip(match.tp, sdri, strict=True)},
        "TP": list(match.tp),
        "FP": list(match.fp),
        "FN": list(match.fn),
        "label_correct": match.labels_correct,
    }
    return score, details


def ca_sdri_soundscape(
    mixture_ch0: np.ndarray, references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray]
) -> tuple[float, dict[str, Any]]:
    """CA-SDRi of one soundscape from arrays (no files needed, e.g. for validation during training).

    ``mixture_ch0`` is the mixture's reference channel [N]; ``references`` and ``estimates`` map class name ->
    mono waveform [N], all of one length (a ``silence`` key is ignored). Only TP classes' waveforms are used.
    Returns the score (dB; NaN when both label sets are empty, as the official code gives) and a details dict:
    ``CA-SDRi``, ``SDRi`` (class -> dB, TP classes only), sorted ``TP``, ``FP``, ``FN`` label lists and
    ``label_correct``.
    """
    match = LabelMatch.of(references, estimates)
    return _score_match(match, estimates.__getitem__, references.__getitem__, lambda: mixture_ch0)


def _score_match(
    match: LabelMatch,
    estimate_of: Callable[[str], np.ndarray],
    reference_of: Callable[[str], np.ndarray],
    mixture_of: Callable[[], np.ndarray],
) -> tuple[float, dict[str, Any]]:
    """Score a label match, fetching waveforms only for the TP classes (and the mixture only if there is one).

    The callables let the file scorer read just the files the score needs; arrays are looked up the same way.
    """
    if not match.tp:
        return _soundscape_result(match, np.zeros(0, COMPUTE_DTYPE))
    sdri = sdri_db(
        np.stack([np.asarray(estimate_of(label)) for label in match.tp]),
        np.stack([np.asarray(reference_of(label)) for label in match.tp]),
        mixture_of(),
    )
    return _soundscape_result(match, sdri)


@dataclass
class _ClassTally:
    """Per-class counts and the TP SDRi values of one class over the dataset."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    sdri: list[float] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        mean = float(np.mean(self.sdri)) if self.sdri else float("nan")  # NaN (JSON null): no TP to average
        return {"SDRi": mean, "TP": self.tp, "FP": self.fp, "FN": self.fn}


def aggregate(soundscape_details: Sequence[Mapping[str, Any]], labels: Sequence[str] = LABELS) -> dict[str, Any]:
    """The dataset report from the details of :func:`ca_sdri_soundscape`, one entry per soundscape.

    ``CA-SDRi`` is the mean of the soundscape scores (dB), ``label_accuracy`` the fraction of soundscapes with
    the exact label set, ``classwise`` per class the mean SDRi over its TPs (NaN when it has none) and its TP, FP
    and FN counts; ``TP``, ``FP``, ``FN`` are totals over classes. Classes outside ``labels`` (array callers)
    are appended after them.
    """
    tallies = {label: _ClassTally() for label in labels}  # every class listed, in vocabulary order
    for details in soundscape_details:
        for label in details["TP"]:
            tallies.setdefault(label, _ClassTally()).tp += 1
            tallies[label].sdri.append(details["SDRi"][label])
        for label in details["FP"]:
            tallies.setdefault(label, _ClassTally()).fp += 1
        for label in details["FN"]:
            tallies.setdefault(label, _ClassTally()).fn += 1
    scores = [details["CA-SDRi"] for details in soundscape_details]
    correct = [details["label_correct"] for details in soundscape_details]
    return {
        "CA-SDRi": float(np.mean(scores)) if scores else float("nan"),
        "label_accuracy": float(np.mean(correct)) if correct else float("nan"),
        "n_soundscapes": len(scores),
        "TP": sum(t.tp for t in tallies.values()),
        "FP": sum(t.fp for t in tallies.values()),
        "FN": sum(t.fn for t in tallies.values()),
        "classwise": {label: tally.report() for label, tally in tallies.items()},
    }


# ---------------------------------------------------------------------------------------------------------------
# WAV folders


@dataclass(frozen=True)
class _Soundscape:
    """One soundscape's files: the mixture and its oracle and estimated targets by class."""

    name: str
    mixture: Path
    references: dict[str, Path]
    estimates: dict[str, Path]


def _wav_files(folder: Path, role: str) -> list[Path]:
    """The ``*.wav`` files directly in ``folder``, sorted by name; a missing or WAV-less folder is an error."""
    if not folder.is_dir():
        raise InputError(folder, f"{role} folder does not exist")
    names = sorted(
        entry.name
        for entry in os.scandir(folder)
        if os.path.splitext(entry.name)[1] == AUDIO_SUFFIX and entry.is_file()
    )
    if not names:
        raise InputError(folder, f"{role} folder holds no {AUDIO_SUFFIX} files")
    return [folder / name for name in names]


def _targets_by_soundscape(
    folder: Path, soundscapes: Collection[str], labels: Collection[str], role: str
) -> dict[str, dict[str, Path]]:
    """Soundscape -> class -> file for every ``<soundscape>_<Label>.wav`` in ``folder``, names checked exactly.

    Names are split by :func:`seldflow.s5.files.split_source_name` (at the last underscore), so a soundscape
    whose name is a prefix of another's is never confused with it, unlike the official prefix match (which
    crashes on such names).
    """
    targets: dict[str, dict[str, Path]] = {}
    for path in _wav_files(folder, role):
        soundscape, label = split_source_name(path, labels, role=role)
        if soundscape not in soundscapes:
            raise InputError(path, f"{role} file for soundscape {soundscape!r}, which has no mixture file")
        targets.setdefault(soundscape, {})[label] = path
    return targets


def _collect(mixture_dir: Path, ref_dir: Path, pred_dir: Path, labels: Collection[str]) -> list[_Soundscape]:
    mixtures = {path.stem: path for path in _wav_files(mixture_dir, "mixture")}
    references = _targets_by_soundscape(ref_dir, mixtures, labels, "oracle target")
    estimates = _targets_by_soundscape(pred_dir, mixtures, labels, "estimate")
    soundscapes = []
    for name, mixture in mixtures.items():
        if name not in references:
            # Every Task 4 soundscape holds 1-3 targets; the official loader crashes on one without oracle files.
            raise InputError(mixture, f"no oracle target file {name}{NAME_SEPARATOR}<Label>{AUDIO_SUFFIX} in {ref_dir}")
        soundscapes.append(_Soundscape(name, mixture, references[name], estimates.get(name, {})))
    return soundscapes


class _Header(NamedTuple):
    """What a file's header says (as ``soundfile.info`` reports it) and, for a plain WAV, where its samples are."""

    channels: int
    samplerate: int
    frames: int
    layout: WavLayout | None


def _info(path: Path) -> _Header:
    """The header of an audio file: parsed directly for a plain WAV (:func:`seldflow.io.plain_wav_layout`), by
    libsndfile otherwise (and for any file that cannot be opened, so its error reads as libsndfile's)."""
    try:
        layout = plain_wav_layout(path)
    except OSError:
        layout = None
    if layout is not None:
        return _Header(layout.channels, layout.sample_rate, layout.frames, layout)
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(path, f"cannot read audio header: {exc}") from None
    return _Header(info.channels, info.samplerate, info.frames, None)


def _check_headers(soundscape: _Soundscape, headers: dict[Path, _Header]) -> None:
    """Header-only checks (no samples read): mono targets with the mixture's sample rate and length. The headers
    are kept in ``headers`` for reading the samples later."""
    mixture = headers[soundscape.mixture] = _info(soundscape.mixture)
    if mixture.frames == 0:
        raise InputError(soundscape.mixture, "mixture has no samples")
    for path in (*soundscape.references.values(), *soundscape.estimates.values()):
        info = headers[path] = _info(path)
        if info.channels != 1:
            raise InputError(path, f"has {info.channels} channels; targets and estimates must be mono")
        if info.samplerate != mixture.samplerate:
            raise InputError(
                path, f"sample rate {info.samplerate} Hz differs from the mixture's {mixture.samplerate} Hz"
            )
        if info.frames != mixture.frames:
            raise InputError(path, f"has {info.frames} samples, the mixture {mixture.frames} (no truncation)")


def _read_channel(path: Path, header: _Header, channel: int = 0) -> np.ndarray:
    if header.layout is not None:
        return read_plain_wav(path, header.layout, channel)
    samples, _ = sf.read(str(path), dtype=COMPUTE_DTYPE, always_2d=True)
    return samples[:, channel]


class _Pending(NamedTuple):
    """A soundscape read but not scored yet: its label match and, with TPs, the TP rows and mixture channel 0."""

    match: LabelMatch
    estimates: np.ndarray | None  # [K, N]
    references: np.ndarray | None  # [K, N]
    mixture: np.ndarray | None  # [N]


def _read_soundscape(soundscape: _Soundscape, headers: Mapping[Path, _Header]) -> _Pending:
    """Read only what the score needs: the TP classes' estimates and oracle targets, and mixture channel 0."""
    match = LabelMatch.of(soundscape.references, soundscape.estimates)
    if not match.tp:
        return _Pending(match, None, None, None)

    def rows(files: Mapping[str, Path]) -> np.ndarray:
        return np.stack([_read_channel(files[label], headers[files[label]]) for label in match.tp])

    estimates, references = rows(soundscape.estimates), rows(soundscape.references)
    mixture = _read_channel(soundscape.mixture, headers[soundscape.mixture], REFERENCE_CHANNEL)
    return _Pending(match, estimates, references, mixture)


def _score_pending(pending: Sequence[_Pending]) -> list[dict[str, Any]]:
    """Details of several soundscapes, their SDRis computed together for each signal length.

    Elementwise the same float32 operations as :func:`sdri_db` per soundscape, and each row's sums are the same
    pairwise float32 sums, so the numbers are those of scoring soundscapes one at a time.
    """
    sdri: list[np.ndarray] = [np.zeros(0, COMPUTE_DTYPE)] * len(pending)
    lengths = {len(item.mixture) for item in pending if item.mixture is not None}
    for length in lengths:
        members = [k for k, item in enumerate(pending) if item.mixture is not None and len(item.mixture) == length]
        counts = [len(pending[k].match.tp) for k in members]
        estimates = np.concatenate([pending[k].estimates for k in members])
        references = np.concatenate([pending[k].references for k in members])
        mixtures = np.repeat(np.stack([pending[k].mixture for k in members]), counts, axis=0)
        values = snr_db(estimates, references) - snr_db(mixtures, references)
        for k, part in zip(members, np.split(values, np.cumsum(counts)[:-1]), strict=True):
            sdri[k] = part
    return [_soundscape_result(item.match, values)[1] for item, values in zip(pending, sdri, strict=True)]


def _score_files(soundscapes: Sequence[_Soundscape], headers: Mapping[Path, _Header]) -> list[dict[str, Any]]:
    """Every soundscape's details, in order, read one soundscape at a time and scored in batches of at most
    :data:`BATCH_SAMPLES` samples (memory stays flat in the number of soundscapes)."""
    details: list[dict[str, Any]] = []
    pending: list[_Pending] = []
    held = 0
    for soundscape in soundscapes:
        item = _read_soundscape(soundscape, headers)
        pending.append(item)
        held += 0 if item.estimates is None else 3 * item.estimates.size
        if held >= BATCH_SAMPLES:
            details += _score_pending(pending)
            pending, held = [], 0
    return details + _score_pending(pending)


def _check_labels(labels: Sequence[str]) -> None:
    bad = [label for label in labels if NAME_SEPARATOR in label or label == SILENCE or not label]
    if bad:
        raise ValueError(f"class names must be non-empty, not {SILENCE!r} and free of {NAME_SEPARATOR!r}: {bad}")


def score_ca_sdri(
    mixture_dir: str | Path, ref_dir: str | Path, pred_dir: str | Path, *, labels: Sequence[str] = LABELS
) -> dict[str, Any]:
    """Score a folder of estimated targets against oracle targets: the Task 4 CA-SDRi report.

    Soundscapes are the ``<soundscape>.wav`` mixtures in ``mixture_dir`` (sorted by name; channel 0 is the SDRi
    baseline); ``ref_dir`` and ``pred_dir`` hold mono ``<soundscape>_<Label>.wav`` files with ``Label`` in
    ``labels``. Only ``*.wav`` files directly in each folder are read. Every file is checked first (names, and
    from the headers alone channels, sample rate and length against the mixture), and the first problem is an
    :class:`InputError` naming the file, so nothing is skipped and nothing is scored from bad input. A soundscape
    without estimates scores as three silent slots (0 dB, a label miss; see the module docstring).

    Returns ``CA-SDRi`` (dB), ``label_accuracy`` (fraction), ``n_soundscapes``, ``n_without_estimates``, TP/FP/FN
    totals, ``classwise`` (see :func:`aggregate`) and ``settings``.
    """
    _check_labels(labels)
    soundscapes = _collect(Path(mixture_dir), Path(ref_dir), Path(pred_dir), set(labels))
    headers: dict[Path, _Header] = {}
    for soundscape in soundscapes:
        _check_headers(soundscape, headers)
    report = aggregate(_score_files(soundscapes, headers), labels)
    report["n_without_estimates"] = sum(not soundscape.estimates for soundscape in soundscapes)
    report["settings"] = {
        "metric": METRIC_NAME,
        "reference_channel": REFERENCE_CHANNEL,
        "eps": EPS,
        "dtype": np.dtype(COMPUTE_DTYPE).name,
        "missing_estimates": "three silent slots",
    }
    return report
