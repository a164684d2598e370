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
from seldflow.io import PlainWavReader, WavLayout
from seldflow.s5.files import AUDIO_SUFFIX, NAME_SEPARATOR, source_stem_parts, split_source_name
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
    return _ratio_db(_power(ref), _power(ref - est))


def _power(signal: np.ndarray) -> np.ndarray:
    """‖x‖² + eps over the last axis, in float32 (numpy's pairwise sum of the squares)."""
    return np.sum(signal * signal, axis=-1) + COMPUTE_DTYPE(EPS)


def _ratio_db(signal_power: np.ndarray, noise_power: np.ndarray) -> np.ndarray:
    return COMPUTE_DTYPE(10) * np.log10(signal_power / noise_power)


def _sdri_rows(estimates: np.ndarray, references: np.ndarray, mixtures: np.ndarray) -> np.ndarray:
    """:func:`sdri_db` of float32 rows [K, N] with one mixture row per source, overwriting ``estimates`` and
    ``mixtures`` with the errors: the very same float32 operations, without the batch-sized temporaries of the
    differences and with the reference power computed once for both SNRs."""
    signal_power = _power(references)
    errors = np.subtract(references, estimates, out=estimates), np.subtract(references, mixtures, out=mixtures)
    return _ratio_db(signal_power, _power(errors[0])) - _ratio_db(signal_power, _power(errors[1]))


def sdri_db(estimates: np.ndarray, references: np.ndarray, mixture_ch0: np.ndarray) -> np.ndarray:
    """SDRi per source: SNR(estimate, reference) − SNR(mixture channel 0, reference), float32 [K].

    ``estimates`` and ``references`` are [K, N] (row k one class), ``mixture_ch0`` is [N]; all sources are scored
    in one vectorised pass.
    """
    refs = np.asarray(references, dtype=COMPUTE_DTYPE)
    mixture = np.broadcast_to(np.asarray(mixture_ch0, dtype=COMPUTE_DTYPE), refs.shape)
    return snr_db(estimates, refs) - snr_db(mixture, refs)


class LabelMatch(NamedTuple):
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


def _term_means(sdri: Sequence[Sequence[float]], n_terms: Sequence[int]) -> np.ndarray:
    """Each soundscape's CA-SDRi: the float32 mean of its terms (its TP SDRis ``sdri[k]``, float32 values, then
    zeros up to ``n_terms[k]`` terms, one per FP and FN); NaN without terms, as the official mean over none.

    Bit for bit ``np.mean`` of each soundscape's terms (its float32 sum, divided by the count in float64 and
    rounded to float32): the soundscapes with as many terms are summed as the rows of one zero-padded float32
    array, which numpy sums as it sums one soundscape's terms (the zeros count: from 8 terms on numpy adds in a
    pairwise order). Built from lists: a batch holds a few dozen soundscapes of a few terms each.
    """
    groups: dict[int, tuple[list[int], list[list[float]]]] = {}
    for k, (values, n) in enumerate(zip(sdri, n_terms, strict=True)):
        if n:
            members, terms = groups.setdefault(n, ([], []))
            members.append(k)
            terms.append([*values, *[0.0] * (n - len(values))])
    means = np.full(len(n_terms), np.nan, dtype=COMPUTE_DTYPE)
    for n, (members, terms) in groups.items():
        sums = np.array(terms, dtype=COMPUTE_DTYPE).sum(axis=1)
        means[members] = (sums.astype(np.float64) / n).astype(COMPUTE_DTYPE)
    return means


def _n_terms(match: LabelMatch) -> int:
    return len(match.tp) + len(match.fp) + len(match.fn)


def _soundscape_result(match: LabelMatch, sdri: np.ndarray) -> tuple[float, dict[str, Any]]:
    """The soundscape's CA-SDRi (:func:`_term_means`) and its details."""
    score = float(_term_means([np.asarray(sdri, dtype=COMPUTE_DTYPE).tolist()], [_n_terms(match)])[0])
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


class _Dataset:
    """The soundscapes of a dataset as they are scored, in order: their scores, whether their label sets were
    exact, and each class's tally; :meth:`report` is the dataset report."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.tallies = {label: _ClassTally() for label in labels}  # every class listed, in vocabulary order
        self.scores: list[float] = []
        self.correct: list[bool] = []

    def add(self, score: float, tp: Sequence[str], sdri: Sequence[float], fp: Iterable[str], fn: Iterable[str]) -> None:
        """One soundscape: its score, its TP classes with their SDRis and its FP and FN classes."""
        fp, fn = list(fp), list(fn)
        self.scores.append(score)
        self.correct.append(not fp and not fn)
        tallies = self.tallies
        for label, value in zip(tp, sdri, strict=True):
            tally = tallies.get(label) or tallies.setdefault(label, _ClassTally())
            tally.tp += 1
            tally.sdri.append(value)
        for label in fp:
            tallies.setdefault(label, _ClassTally()).fp += 1
        for label in fn:
            tallies.setdefault(label, _ClassTally()).fn += 1

    def report(self) -> dict[str, Any]:
        tallies = self.tallies.values()
        return {
            "CA-SDRi": float(np.mean(self.scores)) if self.scores else float("nan"),
            "label_accuracy": float(np.mean(self.correct)) if self.correct else float("nan"),
            "n_soundscapes": len(self.scores),
            "TP": sum(t.tp for t in tallies),
            "FP": sum(t.fp for t in tallies),
            "FN": sum(t.fn for t in tallies),
            "classwise": {label: tally.report() for label, tally in self.tallies.items()},
        }


def aggregate(soundscape_details: Sequence[Mapping[str, Any]], labels: Sequence[str] = LABELS) -> dict[str, Any]:
    """The dataset report from the details of :func:`ca_sdri_soundscape`, one entry per soundscape.

    ``CA-SDRi`` is the mean of the soundscape scores (dB), ``label_accuracy`` the fraction of soundscapes with
    the exact label set, ``classwise`` per class the mean SDRi over its TPs (NaN when it has none) and its TP, FP
    and FN counts; ``TP``, ``FP``, ``FN`` are totals over classes. Classes outside ``labels`` (array callers)
    are appended after them.
    """
    dataset = _Dataset(labels)
    for details in soundscape_details:
        tp = details["TP"]
        dataset.add(details["CA-SDRi"], tp, [details["SDRi"][label] for label in tp], details["FP"], details["FN"])
    return dataset.report()


# ---------------------------------------------------------------------------------------------------------------
# WAV folders


@dataclass(frozen=True)
class _Soundscape:
    """One soundscape's files (paths as strings: thousands of them are joined and opened, never inspected): the
    mixture and its oracle and estimated targets by class."""

    name: str
    mixture: str
    references: dict[str, str]
    estimates: dict[str, str]


def _wav_names(folder: Path, role: str) -> list[str]:
    """The names of the ``*.wav`` files directly in ``folder``, sorted; a missing or WAV-less folder is an error."""
    if not folder.is_dir():
        raise InputError(folder, f"{role} folder does not exist")
    with os.scandir(folder) as entries:
        # os.path.splitext's rule (a name of dots before the suffix has none) without its cost per file
        names = sorted(
            entry.name
            for entry in entries
            if entry.name.endswith(AUDIO_SUFFIX) and entry.name[: -len(AUDIO_SUFFIX)].lstrip(".") and entry.is_file()
        )
    if not names:
        raise InputError(folder, f"{role} folder holds no {AUDIO_SUFFIX} files")
    return names


def _targets_by_soundscape(
    folder: Path, soundscapes: Collection[str], labels: Collection[str], role: str
) -> dict[str, dict[str, str]]:
    """Soundscape -> class -> file for every ``<soundscape>_<Label>.wav`` in ``folder``, names checked exactly.

    Names are split at the last underscore (:func:`seldflow.s5.files.source_stem_parts`; a name it cannot split
    into a known class is reported by :func:`seldflow.s5.files.split_source_name`), so a soundscape whose name is a
    prefix of another's is never confused with it, unlike the official prefix match (which crashes on such names).
    """
    prefix = os.path.join(folder, "")
    targets: dict[str, dict[str, str]] = {}
    for name in _wav_names(folder, role):
        parts = source_stem_parts(name[: -len(AUDIO_SUFFIX)])
        if parts is None or parts[1] not in labels:
            parts = split_source_name(folder / name, labels, role=role)  # raises the error that names the file
        soundscape, label = parts
        if soundscape not in soundscapes:
            raise InputError(prefix + name, f"{role} file for soundscape {soundscape!r}, which has no mixture file")
        targets.setdefault(soundscape, {})[label] = prefix + name
    return targets


def _collect(mixture_dir: Path, ref_dir: Path, pred_dir: Path, labels: Collection[str]) -> list[_Soundscape]:
    prefix = os.path.join(mixture_dir, "")
    mixtures = {name[: -len(AUDIO_SUFFIX)]: prefix + name for name in _wav_names(mixture_dir, "mixture")}
    references = _targets_by_soundscape(ref_dir, mixtures, labels, "oracle target")
    estimates = _targets_by_soundscape(pred_dir, mixtures, labels, "estimate")
    soundscapes = []
    for name, mixture in mixtures.items():
        if name not in references:
            # Every Task 4 soundscape holds 1-3 targets; the official loader crashes on one without oracle files.
            raise InputError(mixture, f"no oracle target file {name}{NAME_SEPARATOR}<Label>{AUDIO_SUFFIX} in {ref_dir}")
        soundscapes.append(_Soundscape(name, mixture, references[name], estimates.get(name, {})))
    return soundscapes


class _OtherFile(NamedTuple):
    """The header of an audio file that is not a plain WAV, as ``soundfile.info`` reports it (the first three
    fields in :class:`seldflow.io.WavLayout`'s order, so both are checked alike); its samples come from libsndfile."""

    sample_rate: int
    channels: int
    frames: int
    path: str


_Header = WavLayout | _OtherFile


def _open(path: str, reader: PlainWavReader) -> _Header:
    """The header of an audio file: a plain WAV is read whole in one go and parsed directly (its layout, its
    samples in ``reader``'s buffer until the next file; :class:`seldflow.io.PlainWavReader`); any other file by
    libsndfile (and any file that cannot be opened, so its error reads as libsndfile's)."""
    try:
        layout = reader.layout(path)
    except OSError:
        layout = None
    if layout is not None:
        return layout
    try:
        info = sf.info(path)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(path, f"cannot read audio header: {exc}") from None
    return _OtherFile(info.samplerate, info.channels, info.frames, path)


def _samples_into(header: _Header, reader: PlainWavReader, channel: int, out: np.ndarray) -> None:
    """Write one channel's float32 samples of the file :func:`_open` read last into ``out``."""
    if type(header) is WavLayout:
        reader.samples(header, channel, out)
    else:
        out[...] = sf.read(header.path, dtype=COMPUTE_DTYPE, always_2d=True)[0][:, channel]


def _open_target(path: str, reader: PlainWavReader, mixture: _Header, expected: tuple[int, int, int]) -> _Header:
    """:func:`_open` of an oracle or estimated target, whose rate, channels and length must be ``expected`` (the
    mixture's rate and length, one channel; :func:`_target_error` says which differs)."""
    target = _open(path, reader)
    if target[:3] != expected:
        raise _target_error(path, target, mixture)
    return target


def _target_error(path: str, target: _Header, mixture: _Header) -> InputError:
    """Why an oracle or estimated target's header fails its checks: mono, the mixture's sample rate and length."""
    if target.channels != 1:
        return InputError(path, f"has {target.channels} channels; targets and estimates must be mono")
    if target.sample_rate != mixture.sample_rate:
        return InputError(
            path, f"sample rate {target.sample_rate} Hz differs from the mixture's {mixture.sample_rate} Hz"
        )
    return InputError(path, f"has {target.frames} samples, the mixture {mixture.frames} (no truncation)")


class _Rows:
    """The TP rows of a batch of soundscapes whose signals have one length, written straight into arrays kept from
    batch to batch: estimates, oracle targets and the mixture's channel 0 once per TP class (one copy of each
    file's samples, no per-file arrays)."""

    def __init__(self, length: int, capacity: int) -> None:
        self.length = length
        self.estimates, self.references, self.mixtures = (np.empty((capacity, length), COMPUTE_DTYPE) for _ in "erm")
        self.used = 0

    def fits(self, length: int, count: int) -> bool:
        return length == self.length and self.used + count <= len(self.estimates)

    def sdri(self) -> np.ndarray:
        """The SDRi of every row written (:func:`_sdri_rows`, overwriting the estimates and mixtures)."""
        used = self.used
        return _sdri_rows(self.estimates[:used], self.references[:used], self.mixtures[:used])


def _read_soundscape(soundscape: _Soundscape, reader: PlainWavReader, batch: _Batch) -> None:
    """Check every file of a soundscape (the mixture first, then its oracle targets, then its estimates), opening
    each once, and write the samples the score needs into the batch's rows: the TP classes' estimates and oracle
    targets and mixture channel 0; of the other files only the headers are looked at."""
    match = LabelMatch.of(soundscape.references, soundscape.estimates)
    mixture = _open(soundscape.mixture, reader)
    if mixture.frames == 0:
        raise InputError(soundscape.mixture, "mixture has no samples")
    expected = (mixture.sample_rate, 1, mixture.frames)  # a target's rate, channels and length
    rows, start = batch.place(match, mixture.frames)
    if rows is None:
        for path in (*soundscape.references.values(), *soundscape.estimates.values()):
            _open_target(path, reader, mixture, expected)
        return
    _samples_into(mixture, reader, REFERENCE_CHANNEL, rows.mixtures[start])
    rows.mixtures[start + 1 : start + len(match.tp)] = rows.mixtures[start]
    position = {label: start + index for index, label in enumerate(match.tp)}
    for files, out in ((soundscape.references, rows.references), (soundscape.estimates, rows.estimates)):
        for label, path in files.items():
            target = _open_target(path, reader, mixture, expected)
            row = position.get(label)
            if row is not None:
                _samples_into(target, reader, 0, out[row])


class _Batch:
    """Soundscapes read but not scored yet (their label matches and first rows) and the rows they wrote; scored
    into the dataset when the rows are full (at most :data:`BATCH_SAMPLES` samples) or change length."""

    def __init__(self, dataset: _Dataset) -> None:
        self.dataset = dataset
        self.rows: _Rows | None = None
        self.pending: list[LabelMatch] = []  # their TP classes took the rows in this order

    def place(self, match: LabelMatch, length: int) -> tuple[_Rows | None, int]:
        """Take a soundscape: the rows its TP classes are to be written to and the first of them (None without
        TP classes). A full batch, or one of another length, is scored first."""
        count = len(match.tp)
        if not count:
            self.pending.append(match)
            return None, 0
        if self.rows is None or not self.rows.fits(length, count):
            self.score()
            if self.rows is None or self.rows.length != length or count > len(self.rows.estimates):
                self.rows = _Rows(length, max(BATCH_SAMPLES // (3 * length), count))
        start = self.rows.used
        self.rows.used += count
        self.pending.append(match)
        return self.rows, start

    def score(self) -> None:
        """Score the pending soundscapes into the dataset and empty the batch.

        Elementwise the same float32 operations as :func:`sdri_db` per soundscape (:func:`_sdri_rows`), and each
        row's sums are the same pairwise float32 sums, so the numbers are those of scoring soundscapes one at a
        time.
        """
        values = self.rows.sdri() if self.rows is not None and self.rows.used else np.zeros(0, COMPUTE_DTYPE)
        values, first, sdri = values.tolist(), 0, []
        for match in self.pending:  # their TP classes took the rows in this order
            sdri.append(values[first : first + len(match.tp)])
            first += len(match.tp)
        scores = _term_means(sdri, [_n_terms(match) for match in self.pending]).tolist()
        for match, score, part in zip(self.pending, scores, sdri, strict=True):
            self.dataset.add(score, match.tp, part, match.fp, match.fn)
        self.pending = []
        if self.rows is not None:
            self.rows.used = 0


def _score_files(soundscapes: Sequence[_Soundscape], labels: Sequence[str]) -> dict[str, Any]:
    """The dataset report of the soundscapes, read one soundscape at a time (each file opened once, checked as it
    is read) and scored in batches of at most :data:`BATCH_SAMPLES` samples (memory stays flat in the number of
    soundscapes). The first bad file ends the run with its error before any report exists."""
    reader = PlainWavReader()
    dataset = _Dataset(labels)
    batch = _Batch(dataset)
    for soundscape in soundscapes:
        _read_soundscape(soundscape, reader, batch)
    batch.score()
    return dataset.report()


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
    ``labels``. Only ``*.wav`` files directly in each folder are read. Every file name is checked first, then
    each soundscape's files from their headers (channels, sample rate and length against the mixture) as they are
    read, soundscape by soundscape; the first problem is an :class:`InputError` naming the file, so nothing is
    skipped and no report comes from bad input. A soundscape
    without estimates scores as three silent slots (0 dB, a label miss; see the module docstring).

    Returns ``CA-SDRi`` (dB), ``label_accuracy`` (fraction), ``n_soundscapes``, ``n_without_estimates``, TP/FP/FN
    totals, ``classwise`` (see :func:`aggregate`) and ``settings``.
    """
    _check_labels(labels)
    soundscapes = _collect(Path(mixture_dir), Path(ref_dir), Path(pred_dir), set(labels))
    report = _score_files(soundscapes, labels)
    report["n_without_estimates"] = sum(not soundscape.estimates for soundscape in soundscapes)
    report["settings"] = {
        "metric": METRIC_NAME,
        "reference_channel": REFERENCE_CHANNEL,
        "eps": EPS,
        "dtype": np.dtype(COMPUTE_DTYPE).name,
        "missing_estimates": "three silent slots",
    }
    return report
