"""Feature extraction: clips to model inputs, written as one HDF5 file per split or per shard of a split.

Four feature kinds are available, two for stereo clips and two for 4-channel clips:

* ``pfoa`` (pseudo first-order Ambisonics, the PSELD-Mamba seed system): the stereo pair is turned into a
  4-channel FOA-like signal so that networks pretrained on FOA (PSELDNets) can be fine-tuned on stereo. Output
  ``(7, T, n_mels)``: 4 log10-mel channels followed by 3 mel-projected intensity vectors.
* ``logmel`` (the official DCASE2025 stereo baseline): 2-channel log-mel in dB, ``(2, T, n_mels)``.
* ``foa`` (PSELDNets ``logmelIV`` on real FOA, ACN W, Y, Z, X, SN3D): 4 log-mel channels in dB followed by the
  3 mel-projected, unit-normalised active intensity vectors of ACN channels Y, Z, X, ``(7, T, n_mels)``.
* ``mic`` (tetrahedral microphone array, the DCASE baseline's MIC recipe): 4 log-mel channels in dB followed by
  6 GCC-PHAT channels, one per microphone pair, ``(10, T, n_mels)``.

:data:`FEATURE_KINDS` maps each kind to its function; :func:`input_channels` gives the audio channel count a kind
reads and :func:`feature_channels` the channel count it produces.

:func:`check_split` lists and checks a split's folders (names, pairing, audio formats) before any feature work;
:func:`extract_split` streams a folder of clips (or a shard of them) and optionally their metadata CSVs into the
HDF5 layout the training and inference stages read; the layout is documented on that function and must not drift.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import librosa
import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.io import atomic_file, read_audio
from seldflow.labels import (
    ADPIT_FIELDS,
    ADPIT_TRACKS,
    CLIP_SAMPLES,
    COL_AZIMUTH,
    CSV_COLUMNS,
    LABEL_FRAMES,
    N_CLASSES,
    SAMPLE_RATE,
    adpit_target,
    read_labels,
)
from seldflow.shards import content_digest

FeatureFunction = Callable[..., np.ndarray]

ADPIT_SHAPE = (LABEL_FRAMES, ADPIT_TRACKS, ADPIT_FIELDS, N_CLASSES)

# Suffix of the left/right-swapped twin of a clip (same spelling as the seed system's feature files).
LR_SWAP_SUFFIX = "_LRswap"

# Floor of the mel power before log10 in PFOA; silent (or zero) channels become exactly log10(1e-10) = -10.
PFOA_LOG_FLOOR = 1e-10
# Added to the intensity-vector norm so that bins with no energy give 0 instead of 0/0.
PFOA_IV_EPS = 1e-8
# Pseudo-FOA array channels (ACN order W, Y, Z, X) whose intensity vectors are stacked, in output order. The
# seed system stacks array channels 1, 3, 2; for stereo input channels 2 and 3 are silent, so only the first
# (Y, the left/right axis) carries information and the order merely keeps the layout of the pretrained nets.
PFOA_IV_CHANNELS: tuple[int, ...] = (1, 3, 2)

# power_to_db settings of the official baseline (librosa defaults, written out so a librosa release that
# changes its defaults cannot silently change the features).
LOGMEL_AMIN = 1e-10
LOGMEL_TOP_DB = 80.0
# librosa >= 0.10 pads centred frames with zeros; the baseline relied on the default, so we pin it.
LOGMEL_PAD_MODE = "constant"

# FOA ``logmelIV`` (PSELDNets): ACN array channels whose intensity vectors are stacked, in output order. PSELDNets
# stacks input channels 1, 2, 3 as they come, i.e. ACN Y, Z, X (not x, y, z): output channel 4 is the left (+y)
# component, 5 the up (+z) component, 6 the front (+x) component. PFOA keeps Y first too, so its layout matches.
FOA_IV_CHANNELS: tuple[int, ...] = (1, 2, 3)
# Floor of the mel power before 10·log10 in the FOA and MIC log-mels (AmplitudeToDB, power, ref 1, top_db None):
# silent (or zero) channels become exactly 10·log10(1e-10) = -100 dB; no relative floor, no normalisation.
DB_AMIN = 1e-10
# Microphone pairs of the MIC kind's GCC-PHAT channels, in output order (channels 4 to 9).
MIC_PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
# Channel orders of the left-right twins (see :func:`mirror_audio`): FOA negates Y, MIC exchanges M1/M2 and M3/M4.
_FOA_MIRROR_SIGNS = np.array([1.0, -1.0, 1.0, 1.0], dtype=np.float32)[:, None]
_MIC_MIRROR_ORDER = [1, 0, 3, 2]


def pfoa(
    stereo: np.ndarray,
    *,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = 1024,
    win_length: int = 960,
    hop_length: int = 480,
    n_mels: int = 64,
    fmin: float = 20.0,
    fmax: float = 12000.0,
) -> np.ndarray:
    """Pseudo-FOA features of a stereo clip, float32 ``(7, T, n_mels)`` with ``T = 1 + samples // hop``.

    Reproduces the seed system so its pretrained encoders see the inputs they were fine-tuned on: the clip is
    peak-normalised (level-independent features), mapped to W = (L+R)/2, Y = (L-R)/2 plus two silent channels
    (which is exactly the rotated FOA W and Y under the dataset's mid/side stereo encoding), then described by
    log10 mel power per channel and the mel-projected, unit-normalised active intensity.
    """
    audio = _peak_normalise(_check_stereo(stereo))
    foa = _stereo_to_pseudo_foa(torch.from_numpy(audio))
    with torch.inference_mode():
        spec = _torch_stft(foa, n_fft=n_fft, win_length=win_length, hop_length=hop_length)
        mel = _pfoa_mel_matrix(sample_rate, n_fft, n_mels, float(fmin), float(fmax))
        log_mel = _log10_mel(spec, mel)
        intensity = _intensity_vectors(spec) @ mel
        return torch.cat((log_mel, intensity), dim=0).numpy().astype(np.float32, copy=False)


def logmel(
    stereo: np.ndarray,
    *,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = 1024,
    win_length: int = 960,
    hop_length: int = 480,
    n_mels: int = 64,
) -> np.ndarray:
    """The official baseline's 2-channel log-mel in dB, float32 ``(2, T, n_mels)``; no normalisation.

    As in the baseline, ``power_to_db`` runs once over both channels, so the 80 dB floor is relative to the
    louder channel's peak: the level difference between L and R, the only spatial cue, is preserved.
    """
    audio = _check_stereo(stereo)
    spec = librosa.stft(
        audio,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window="hann",
        center=True,
        pad_mode=LOGMEL_PAD_MODE,
    )
    power = (spec.real**2 + spec.imag**2).transpose(0, 2, 1)  # (2, time, freq)
    mel_power = power @ _logmel_mel_matrix(sample_rate, n_fft, n_mels)
    db = librosa.power_to_db(mel_power, ref=1.0, amin=LOGMEL_AMIN, top_db=LOGMEL_TOP_DB)
    return db.astype(np.float32, copy=False)


def foa_logmel_iv(
    foa: np.ndarray,
    *,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = 1024,
    win_length: int = 1024,
    hop_length: int = 240,
    n_mels: int = 64,
    fmin: float = 20.0,
    fmax: float = 12000.0,
) -> np.ndarray:
    """PSELDNets ``logmelIV`` of a first-order Ambisonics clip (ACN W, Y, Z, X; SN3D), float32 ``(7, T, n_mels)``.

    Channels 0-3: mel power of W, Y, Z, X in dB, ``10·log10(max(power, 1e-10))`` (AmplitudeToDB with ref 1 and no
    top_db), so the level of the clip is kept (no peak normalisation). Channels 4-6: the active intensity
    ``Re(W · conj(c))`` of c = Y, Z, X (ACN order, as PSELDNets stacks its input channels 1, 2, 3), unit-normalised
    per time-frequency bin over the three components and projected on the mel filters; for one plane wave from
    azimuth ``a`` and elevation ``e`` each band holds ``(sin a cos e, sin e, cos a cos e)`` times the band's filter
    area. STFT: periodic Hann window, centred frames with reflect padding, so ``T = 1 + samples // hop_length``
    (501 for 5 s at the default 10-ms hop). Mel filters: HTK scale with Slaney area normalisation, as PFOA.
    """
    audio = _check_channels(foa, 4, "FOA")
    with torch.inference_mode():
        spec = _torch_stft(torch.from_numpy(audio), n_fft=n_fft, win_length=win_length, hop_length=hop_length)
        mel = _pfoa_mel_matrix(sample_rate, n_fft, n_mels, float(fmin), float(fmax))
        log_mel = _db_mel(spec, mel)
        intensity = _intensity_vectors(spec, FOA_IV_CHANNELS) @ mel
        return torch.cat((log_mel, intensity), dim=0).numpy().astype(np.float32, copy=False)


def mic_logmel_gcc(
    mic: np.ndarray,
    *,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = 1024,
    win_length: int = 1024,
    hop_length: int = 240,
    n_mels: int = 64,
    fmin: float = 20.0,
    fmax: float = 12000.0,
) -> np.ndarray:
    """Log-mel and GCC-PHAT of a 4-microphone (tetrahedral) clip, float32 ``(10, T, n_mels)``.

    Channels 0-3: mel power of microphones 1-4 in dB, exactly as channels 0-3 of :func:`foa_logmel_iv` (same STFT,
    filters and floor). Channels 4-9: GCC-PHAT of the pairs :data:`MIC_PAIRS` = (0, 1), (0, 2), (0, 3), (1, 2),
    (1, 3), (2, 3), per STFT frame ``irfft(X_i · conj(X_j) / |X_i · conj(X_j)|, n_fft)`` (bins without energy
    contribute 0), truncated to the central ``n_mels`` lags as the DCASE baseline does.

    Lag ordering along the last axis: index ``k`` holds lag ``k - n_mels // 2`` samples, i.e. lags
    -32 .. 31 for 64 bins, lag 0 at index 32. Sign: the cross-correlation is ``sum_n x_i[n + lag] · x_j[n]``, so
    a wave that reaches microphone ``j`` ``d`` samples before microphone ``i`` peaks at lag ``+d``: the peak sits
    at ``(t_i - t_j) · sample_rate``, the arrival time at the first microphone of the pair minus that at the second.
    """
    audio = _check_channels(mic, 4, "microphone-array")
    if not 1 <= n_mels <= n_fft:
        raise ValueError(f"GCC-PHAT keeps n_mels lags of an n_fft-point correlation; need 1 <= {n_mels} <= {n_fft}")
    with torch.inference_mode():
        spec = _torch_stft(torch.from_numpy(audio), n_fft=n_fft, win_length=win_length, hop_length=hop_length)
        mel = _pfoa_mel_matrix(sample_rate, n_fft, n_mels, float(fmin), float(fmax))
        log_mel = _db_mel(spec, mel)
        gcc = _gcc_phat(spec, n_fft=n_fft, n_lags=n_mels)
        return torch.cat((log_mel, gcc), dim=0).numpy().astype(np.float32, copy=False)


FEATURE_KINDS: dict[str, FeatureFunction] = {
    "pfoa": pfoa,
    "logmel": logmel,
    "foa": foa_logmel_iv,
    "mic": mic_logmel_gcc,
}
_FEATURE_CHANNELS: dict[str, int] = {"pfoa": 7, "logmel": 2, "foa": 7, "mic": 10}
_INPUT_CHANNELS: dict[str, int] = {"pfoa": 2, "logmel": 2, "foa": 4, "mic": 4}


def feature_channels(kind: str) -> int:
    """Number of input channels a model needs for features of ``kind``."""
    _check_kind(kind)
    return _FEATURE_CHANNELS[kind]


def input_channels(kind: str) -> int:
    """Number of audio channels the clips of ``kind`` have: 2 (stereo) for pfoa and logmel, 4 for foa and mic."""
    _check_kind(kind)
    return _INPUT_CHANNELS[kind]


def feature_frames(clip_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT (every kind pads ``n_fft // 2`` on each side): 251 for 5 s at a 20 ms hop."""
    return 1 + clip_samples // hop_length


def mirror_audio(audio: np.ndarray, kind: str) -> np.ndarray:
    """The left-right twin of a clip read for ``kind``: the scene whose labels have every azimuth negated.

    * ``pfoa``, ``logmel`` (stereo): L and R exchanged, the seed system's LR swap (mirror across the x-z plane).
    * ``foa``: Y negated (W, Z, X kept): the exact FOA image of the scene mirrored across the x-z plane, so azimuth
      changes sign and elevation is kept.
    * ``mic``: microphones 1 and 2, and 3 and 4, exchanged. The tetrahedron (45°, 35°), (-45°, -35°),
      (135°, -35°), (-135°, 35°) has no left-right mirror symmetry, but a half turn about the front (x) axis maps
      it onto itself with exactly that exchange; the twin is the scene so rotated: azimuth and elevation both
      change sign. DCASE2025 labels carry no elevation, so the label rows change exactly as for the other kinds.
    """
    _check_kind(kind)
    audio = _check_channels(audio, _INPUT_CHANNELS[kind], f"{kind!r}")
    if kind == "foa":
        return audio * _FOA_MIRROR_SIGNS
    if kind == "mic":
        return np.ascontiguousarray(audio[_MIC_MIRROR_ORDER])
    return np.ascontiguousarray(audio[::-1])


def _check_kind(kind: str) -> None:
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; expected one of {', '.join(sorted(FEATURE_KINDS))}")


def _check_stereo(stereo: np.ndarray) -> np.ndarray:
    audio = np.asarray(stereo, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] != 2:
        raise ValueError(f"expected stereo audio of shape (2, samples), got {audio.shape}")
    return np.ascontiguousarray(audio)


def _check_channels(audio: np.ndarray, channels: int, what: str) -> np.ndarray:
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != channels:
        raise ValueError(f"expected {what} audio of shape ({channels}, samples), got {array.shape}")
    return np.ascontiguousarray(array)


def _peak_normalise(audio: np.ndarray) -> np.ndarray:
    """Scale so the largest sample of either channel is 1; one gain for both keeps the L/R level difference."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio / peak if peak > 0.0 else audio.copy()


def _stereo_to_pseudo_foa(stereo: torch.Tensor) -> torch.Tensor:
    """(2, N) L/R to (4, N) ACN W, Y, Z, X: inverts L = W + Y, R = W - Y; stereo carries no Z or X."""
    foa = torch.zeros((4, stereo.shape[1]), dtype=stereo.dtype)
    foa[0] = (stereo[0] + stereo[1]) / 2
    foa[1] = (stereo[0] - stereo[1]) / 2
    return foa


def _torch_stft(signal: torch.Tensor, *, n_fft: int, win_length: int, hop_length: int) -> torch.Tensor:
    """Complex STFT ``(channels, n_fft // 2 + 1, T)`` with a periodic Hann window and reflect padding."""
    window = torch.hann_window(win_length, periodic=True, dtype=signal.dtype)
    return torch.stft(
        signal,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )


@functools.lru_cache(maxsize=8)
def _pfoa_mel_matrix(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    """Mel filterbank ``(n_fft // 2 + 1, n_mels)``: HTK mel scale with Slaney area normalisation.

    These are the filters of the seed system's torchaudio ``MelScale``; cached because every clip reuses them.
    """
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True, norm="slaney")
    return torch.from_numpy(np.ascontiguousarray(mel.T, dtype=np.float32))


@functools.lru_cache(maxsize=8)
def _logmel_mel_matrix(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """The baseline's filterbank ``(n_fft // 2 + 1, n_mels)``: librosa defaults (Slaney scale and norm, 0 to sr/2)."""
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, htk=False, norm="slaney")
    mel.flags.writeable = False
    return mel.T


def _log10_mel(spec: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
    """log10 of mel power, ``(channels, T, n_mels)``; log10 rather than dB, as in the seed system."""
    power = (spec.real**2 + spec.imag**2).transpose(1, 2)
    return torch.log10(torch.clamp(power @ mel, min=PFOA_LOG_FLOOR))


def _db_mel(spec: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
    """Mel power in dB, ``(channels, T, n_mels)``: 10·log10 with an absolute 1e-10 floor, as AmplitudeToDB."""
    power = (spec.real**2 + spec.imag**2).transpose(1, 2)
    return 10.0 * torch.log10(torch.clamp(power @ mel, min=DB_AMIN))


def _intensity_vectors(spec: torch.Tensor, channels: tuple[int, ...] = PFOA_IV_CHANNELS) -> torch.Tensor:
    """Unit-norm active intensity Re(W · conj(c)) per bin, ``(3, T, freq)``, components in ``channels`` order.

    Normalising by the vector length keeps only direction; the mel projection then averages directions per band.
    """
    reference = spec[0]
    components = torch.stack([reference.real * spec[c].real + reference.imag * spec[c].imag for c in channels])
    norm = torch.sqrt(torch.sum(components**2, dim=0)) + PFOA_IV_EPS
    return (components / norm).transpose(1, 2)


def _gcc_phat(spec: torch.Tensor, *, n_fft: int, n_lags: int) -> torch.Tensor:
    """GCC-PHAT of every pair in :data:`MIC_PAIRS`, ``(6, T, n_lags)``, lags ``-n_lags // 2`` upwards.

    The phase transform keeps only the phase of each bin's cross-spectrum; bins with no energy give 0, not 0/0.
    """
    first = spec[[i for i, _ in MIC_PAIRS]]
    second = spec[[j for _, j in MIC_PAIRS]]
    cross = first * torch.conj(second)
    magnitude = torch.abs(cross)
    phat = cross / torch.where(magnitude > 0, magnitude, torch.ones_like(magnitude))
    correlation = torch.fft.irfft(phat, n=n_fft, dim=1)  # (pairs, n_fft lags, T); lag L at index L mod n_fft
    centred = torch.roll(correlation, shifts=n_lags // 2, dims=1)[:, :n_lags]
    return centred.transpose(1, 2)


# --------------------------------------------------------------------------------------------------------------
# Split extraction


def extract_split(
    audio_dir: str | os.PathLike[str],
    out_h5: str | os.PathLike[str],
    *,
    metadata_dir: str | os.PathLike[str] | None,
    kind: str,
    lr_swap: bool,
    n_fft: int,
    win_length: int,
    hop_length: int,
    n_mels: int,
    sample_rate: int = SAMPLE_RATE,
    clip_samples: int = CLIP_SAMPLES,
    clips: Sequence[str] | None = None,
) -> None:
    """Extract features (and ADPIT targets) of every ``*.wav`` in ``audio_dir`` into one HDF5 file.

    ``clips`` restricts the file to those stems (a shard of the split, in the given order); every one must exist.

    Clips must have the channel count of ``kind`` (:func:`input_channels`: stereo for ``pfoa`` and ``logmel``,
    4 channels for ``foa`` and ``mic``), the sample rate and ``clip_samples`` samples; any other clip is an
    :class:`InputError` naming the file.

    Layout (read by training and inference; names and shapes are a contract):

    * ``features`` float32 ``(N, C, T, F)``, one uncompressed chunk per clip for fast random access;
    * ``labels`` float32 ``(N, 50, 6, 4, 13)`` ADPIT targets (activity, x, y, distance in m), chunk per clip;
    * ``label_rows`` int64 ``(M, 7)``: clip index followed by the six CSV columns, one row per label row;
    * ``clips`` ``(N,)`` UTF-8 stems, clips sorted by name, each LR-swap twin right after its original;
    * attributes ``kind``, ``sample_rate``, ``label_frames``, ``channels``, ``config`` (JSON, sorted keys) and
      ``digest`` (:func:`seldflow.shards.content_digest` of the arrays, so an index over shards sees changes).

    ``labels`` and ``label_rows`` exist only when ``metadata_dir`` is given; then every clip needs
    ``<stem>.csv`` there and every CSV needs its clip. With ``lr_swap`` each clip gets a twin
    ``<stem>_LRswap`` whose audio is :func:`mirror_audio` of the clip and whose azimuths are negated (the seed
    system's augmentation: mirroring the scene across the front axis; stereo exchanges L and R, FOA negates Y,
    MIC exchanges microphones 1/2 and 3/4). Clips are streamed, so memory stays at one clip whatever the split size;
    the file appears only when complete and carries no timestamps, so identical inputs give identical bytes.
    """
    _check_kind(kind)
    audio_dir = Path(audio_dir)
    audio_paths = _list_audio(audio_dir) if clips is None else _shard_audio(audio_dir, clips)
    rows = None if metadata_dir is None else _read_split_labels(Path(metadata_dir), audio_paths, whole=clips is None)
    names = _clip_names(audio_dir, audio_paths, lr_swap)
    params = {"n_fft": n_fft, "win_length": win_length, "hop_length": hop_length, "n_mels": n_mels}
    config = {**params, "kind": kind, "lr_swap": lr_swap, "sample_rate": sample_rate}
    config["clip_samples"] = clip_samples
    extract = functools.partial(FEATURE_KINDS[kind], sample_rate=sample_rate, **params)
    shape = (feature_channels(kind), feature_frames(clip_samples, hop_length), n_mels)

    with atomic_file(out_h5) as tmp, h5py.File(tmp, "w") as h5:
        _write_header(h5, kind=kind, sample_rate=sample_rate, channels=shape[0], config=config)
        _write_clip_names(h5, names)
        features = _per_clip_dataset(h5, "features", len(names), shape)
        targets = None
        if rows is not None:
            h5.create_dataset("label_rows", data=_label_table(rows, lr_swap), track_times=False)
            targets = _per_clip_dataset(h5, "labels", len(names), ADPIT_SHAPE)
        index = 0
        audio_channels = input_channels(kind)
        for clip, path in enumerate(tqdm(audio_paths, desc=f"features {audio_dir.name}", unit="clip")):
            clip_audio = read_audio(path, sample_rate=sample_rate, channels=audio_channels, frames=clip_samples)
            clip_rows = None if rows is None else rows[clip]
            for audio, version_rows in _versions(clip_audio, clip_rows, lr_swap, kind):
                features[index] = extract(audio)
                if targets is not None and version_rows is not None:
                    targets[index] = adpit_target(version_rows)
                index += 1
        h5.attrs["digest"] = content_digest(h5)


def check_split(
    audio_dir: str | os.PathLike[str],
    metadata_dir: str | os.PathLike[str] | None,
    *,
    channels: int,
    sample_rate: int = SAMPLE_RATE,
    clip_samples: int = CLIP_SAMPLES,
) -> list[str]:
    """Clip stems of a split, after checking the whole folder from the file headers (no audio decoded).

    Runs before any shard so a dataset with missing, extra or malformed files fails in seconds, naming every
    offending file, instead of after hours of feature extraction: audio without labels, labels without audio,
    files that are neither, and WAVs with the wrong channel count, rate or length are all reported.
    """
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise InputError(audio_dir, "audio folder not found")
    audio = sorted(p.name for p in audio_dir.iterdir() if not p.name.startswith("."))
    stems = [name[: -len(".wav")] for name in audio if name.endswith(".wav")]
    problems = []
    extra = [name for name in audio if not name.endswith(".wav")]
    if extra:
        problems.append(f"{audio_dir}: files that are not *.wav clips: {_listed(extra)}")
    if not stems:
        problems.append(f"{audio_dir}: no *.wav files in the audio folder")
    if metadata_dir is not None:
        problems += _pairing_problems(Path(metadata_dir), set(stems))
    problems += _format_problems(audio_dir, stems, channels=channels, sample_rate=sample_rate, frames=clip_samples)
    if problems:
        raise InputError(audio_dir, f"{len(problems)} problem(s) in the split:\n  " + "\n  ".join(problems))
    return stems


def _pairing_problems(metadata_dir: Path, stems: set[str]) -> list[str]:
    if not metadata_dir.is_dir():
        return [f"{metadata_dir}: metadata folder not found"]
    names = sorted(p.name for p in metadata_dir.iterdir() if not p.name.startswith("."))
    labelled = {name[: -len(".csv")] for name in names if name.endswith(".csv")}
    problems = []
    missing = sorted(f"{stem}.csv" for stem in stems - labelled)
    if missing:
        problems.append(f"{metadata_dir}: label files missing for clips: {_listed(missing)}")
    orphans = sorted(f"{stem}.csv" for stem in labelled - stems)
    if orphans:
        problems.append(f"{metadata_dir}: label files without a clip: {_listed(orphans)}")
    extra = [name for name in names if not name.endswith(".csv")]
    if extra:
        problems.append(f"{metadata_dir}: files that are not *.csv labels: {_listed(extra)}")
    return problems


def _format_problems(audio_dir: Path, stems: list[str], *, channels: int, sample_rate: int, frames: int) -> list[str]:
    problems = []
    for stem in tqdm(stems, desc=f"check {audio_dir.name}", unit="clip"):
        path = audio_dir / f"{stem}.wav"
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError, OSError) as exc:
            problems.append(f"{path}: cannot read audio header ({exc})")
            continue
        found = (info.channels, info.samplerate, info.frames)
        if found != (channels, sample_rate, frames):
            problems.append(
                f"{path}: {info.channels} channels, {info.samplerate} Hz, {info.frames} samples;"
                f" expected {channels}, {sample_rate} Hz, {frames}"
            )
    return problems


def _list_audio(audio_dir: Path) -> list[Path]:
    if not audio_dir.is_dir():
        raise InputError(audio_dir, "audio folder not found")
    paths = sorted(audio_dir.glob("*.wav"), key=lambda p: p.name)
    if not paths:
        raise InputError(audio_dir, "no *.wav files in the audio folder")
    return paths


def _shard_audio(audio_dir: Path, clips: Sequence[str]) -> list[Path]:
    if not audio_dir.is_dir():
        raise InputError(audio_dir, "audio folder not found")
    paths = [audio_dir / f"{stem}.wav" for stem in clips]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise InputError(audio_dir, f"clips of this shard not found: {_listed(missing)}")
    return paths


def _listed(names: Sequence[str], limit: int = 10) -> str:
    """Names for an error message: all of them up to ``limit``, then a count, so the user knows the extent."""
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _read_split_labels(metadata_dir: Path, audio_paths: list[Path], *, whole: bool = True) -> list[np.ndarray]:
    """Label rows of every clip, in clip order; clips and CSVs must pair up exactly, nothing is dropped.

    A shard (``whole`` False) reads only its own CSVs: the pairing of the whole split was checked by
    :func:`check_split` before any shard ran.
    """
    if not metadata_dir.is_dir():
        raise InputError(metadata_dir, "metadata folder not found")
    stems = {path.stem for path in audio_paths}
    orphans = sorted(p.name for p in metadata_dir.glob("*.csv") if p.stem not in stems) if whole else []
    if orphans:
        raise InputError(metadata_dir, f"label files without a matching clip in the audio folder: {_listed(orphans)}")
    rows = []
    for path in audio_paths:
        csv_path = metadata_dir / f"{path.stem}.csv"
        if not csv_path.is_file():
            raise InputError(csv_path, f"label file for clip {path.name} not found")
        rows.append(read_labels(csv_path))
    return rows


def _clip_names(audio_dir: Path, audio_paths: list[Path], lr_swap: bool) -> list[str]:
    """Output clip names; refuses a folder whose own names would collide with the LR-swap twins."""
    names = []
    for path in audio_paths:
        names.append(path.stem)
        if lr_swap:
            names.append(path.stem + LR_SWAP_SUFFIX)
    if len(set(names)) != len(names):
        raise InputError(audio_dir, f"clip names ending in {LR_SWAP_SUFFIX} collide with the LR-swap twins")
    return names


def _versions(
    audio: np.ndarray, rows: np.ndarray | None, lr_swap: bool, kind: str
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The clip with its labels, then (with ``lr_swap``) its mirror image: :func:`mirror_audio`, azimuths negated."""
    versions = [(audio, rows)]
    if lr_swap:
        versions.append((mirror_audio(audio, kind), None if rows is None else _mirror_rows(rows)))
    return versions


def _mirror_rows(rows: np.ndarray) -> np.ndarray:
    """Labels of the mirrored clip: left and right exchange, so azimuth changes sign (distance, flags kept)."""
    mirrored = rows.copy()
    mirrored[:, COL_AZIMUTH] = -mirrored[:, COL_AZIMUTH]
    return mirrored


def _label_table(rows: list[np.ndarray], lr_swap: bool) -> np.ndarray:
    """All label rows with the output clip index prepended, ``(M, 7)`` int64, in output clip order."""
    tables = []
    index = 0
    for clip_rows in rows:
        versions = [clip_rows, _mirror_rows(clip_rows)] if lr_swap else [clip_rows]
        for version in versions:
            tables.append(np.column_stack([np.full(len(version), index, dtype=np.int64), version]))
            index += 1
    return np.concatenate(tables).astype(np.int64).reshape(-1, 1 + len(CSV_COLUMNS))


def _write_header(h5: h5py.File, *, kind: str, sample_rate: int, channels: int, config: dict) -> None:
    h5.attrs["kind"] = kind
    h5.attrs["sample_rate"] = sample_rate
    h5.attrs["label_frames"] = LABEL_FRAMES
    h5.attrs["channels"] = channels
    h5.attrs["config"] = json.dumps(config, sort_keys=True)


def _write_clip_names(h5: h5py.File, names: list[str]) -> None:
    data = np.array(names, dtype=object)
    h5.create_dataset("clips", data=data, dtype=h5py.string_dtype(), track_times=False)


def _per_clip_dataset(h5: h5py.File, name: str, n_clips: int, item_shape: tuple[int, ...]) -> h5py.Dataset:
    """float32 dataset with one chunk per clip; no timestamps, so reruns are byte-identical."""
    shape = (n_clips, *item_shape)
    return h5.create_dataset(name, shape=shape, dtype=np.float32, chunks=(1, *item_shape), track_times=False)
