"""Feature kinds: the functions that turn a clip into model inputs, and the facts each kind owns.

Four feature kinds are available, two for stereo clips and two for 4-channel clips:

* ``pfoa`` (pseudo first-order Ambisonics, the PSELD-Mamba seed system): the stereo pair is turned into a
  4-channel FOA-like signal so that networks pretrained on FOA (PSELDNets) can be fine-tuned on stereo. Output
  ``(7, T, n_mels)``: 4 log10-mel channels followed by 3 mel-projected intensity vectors.
* ``logmel`` (the official DCASE2025 stereo baseline): 2-channel log-mel in dB, ``(2, T, n_mels)``.
* ``foa`` (PSELDNets ``logmelIV`` on real FOA, ACN W, Y, Z, X, SN3D): 4 log-mel channels in dB followed by the
  3 mel-projected, unit-normalised active intensity vectors of ACN channels Y, Z, X, ``(7, T, n_mels)``.
* ``mic`` (tetrahedral microphone array, the DCASE baseline's MIC recipe): 4 log-mel channels in dB followed by
  6 GCC-PHAT channels, one per microphone pair, ``(10, T, n_mels)``.

:data:`FEATURE_KINDS` maps each kind to a :class:`FeatureKind`: its function, the audio folder format and channel
count it reads and the channel count it produces. The workflow's rules and the config schema derive from it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import librosa
import numpy as np

from seldflow.labels import SAMPLE_RATE
from seldflow.spectral import SpectralRows, frame_count, htk_mel_bands, log_floor, spectral_rows

FeatureFunction = Callable[..., np.ndarray]

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
    audio = _peak_normalise(check_channels(stereo, 2, "stereo"))
    # Z and X are silent: their spectra are zero, so their log-mels are the floor and their intensity components 0;
    # only W and Y go through the STFT, and only Y's intensity (Re(W · conj(Y)) over its own length) is computed.
    stft = (sample_rate, n_fft, win_length, hop_length, n_mels, fmin, fmax)
    rows = _mel_rows(_stereo_to_w_y(audio), *stft, intensity_of=(1,), intensity_eps=PFOA_IV_EPS)
    out = np.zeros((7, rows.mels.shape[1], n_mels), dtype=np.float32)
    out[:2] = rows.power  # W, Y
    log_floor(out[:4], floor=PFOA_LOG_FLOOR, scale=1.0)
    out[4 + PFOA_IV_CHANNELS.index(1)] = rows.intensity[0]
    return out


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
    audio = check_channels(stereo, 2, "stereo")
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
    audio = check_channels(foa, 4, "FOA")
    stft = (sample_rate, n_fft, win_length, hop_length, n_mels, fmin, fmax)
    rows = _mel_rows(audio, *stft, intensity_of=FOA_IV_CHANNELS, intensity_eps=PFOA_IV_EPS)
    out = rows.mels
    log_floor(out[:4], floor=DB_AMIN, scale=10.0)
    return out


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
    audio = check_channels(mic, 4, "microphone-array")
    if not 1 <= n_mels <= n_fft:
        raise ValueError(f"GCC-PHAT keeps n_mels lags of an n_fft-point correlation; need 1 <= {n_mels} <= {n_fft}")
    stft = (sample_rate, n_fft, win_length, hop_length, n_mels, fmin, fmax)
    rows = _mel_rows(audio, *stft, gcc_pairs=MIC_PAIRS, gcc_lags=n_mels)
    out = np.empty((4 + len(MIC_PAIRS), *rows.gcc.shape[1:]), dtype=np.float32)
    out[:4] = rows.power
    log_floor(out[:4], floor=DB_AMIN, scale=10.0)
    out[4:] = rows.gcc
    return out


def _mel_rows(
    audio: np.ndarray,
    sample_rate: int,
    n_fft: int,
    win_length: int,
    hop_length: int,
    n_mels: int,
    fmin: float,
    fmax: float,
    **products: Any,
) -> SpectralRows:
    """:func:`spectral_rows` of ``audio`` on the HTK mel bands every kind of this module projects on, with the
    per-bin ``products`` the kind asks for (intensity components, GCC-PHAT pairs)."""
    bands = htk_mel_bands(sample_rate, n_fft, n_mels, float(fmin), float(fmax))
    return spectral_rows(audio, bands, n_fft=n_fft, win_length=win_length, hop_length=hop_length, **products)


@dataclass(frozen=True)
class FeatureKind:
    """Everything the workflow needs to know about one feature kind, in one place."""

    name: str
    function: FeatureFunction
    audio_format: str  # folder prefix of the clips it reads in the DCASE layout (stereo_dev, foa_dev, mic_dev)
    input_channels: int  # audio channels of those clips
    output_channels: int  # feature channels it produces, the model's input channels


FEATURE_KINDS: dict[str, FeatureKind] = {
    kind.name: kind
    for kind in (
        FeatureKind("pfoa", pfoa, audio_format="stereo", input_channels=2, output_channels=7),
        FeatureKind("logmel", logmel, audio_format="stereo", input_channels=2, output_channels=2),
        FeatureKind("foa", foa_logmel_iv, audio_format="foa", input_channels=4, output_channels=7),
        FeatureKind("mic", mic_logmel_gcc, audio_format="mic", input_channels=4, output_channels=10),
    )
}


def feature_kind(kind: str) -> FeatureKind:
    """The registered kind ``kind``."""
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; expected one of {', '.join(sorted(FEATURE_KINDS))}")
    return FEATURE_KINDS[kind]


def feature_channels(kind: str) -> int:
    """Number of input channels a model needs for features of ``kind``."""
    return feature_kind(kind).output_channels


def input_channels(kind: str) -> int:
    """Number of audio channels the clips of ``kind`` have: 2 (stereo) for pfoa and logmel, 4 for foa and mic."""
    return feature_kind(kind).input_channels


def feature_frames(clip_samples: int, hop_length: int) -> int:
    """Frames of a clip's features (every kind's STFT is centred, :func:`seldflow.spectral.frame_count`): 251 for
    5 s at a 20 ms hop."""
    return frame_count(clip_samples, hop_length)


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
    audio = check_channels(audio, input_channels(kind), f"{kind!r}")
    if kind == "foa":
        return audio * _FOA_MIRROR_SIGNS
    if kind == "mic":
        return np.ascontiguousarray(audio[_MIC_MIRROR_ORDER])
    return np.ascontiguousarray(audio[::-1])


def check_channels(audio: np.ndarray, channels: int, what: str) -> np.ndarray:
    """``audio`` as contiguous float32 ``(channels, samples)``, or a ValueError naming the expected shape."""
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != channels:
        raise ValueError(f"expected {what} audio of shape ({channels}, samples), got {array.shape}")
    return np.ascontiguousarray(array)


def _peak_normalise(audio: np.ndarray) -> np.ndarray:
    """Scale so the largest sample of either channel is 1; one gain for both keeps the L/R level difference."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio / peak if peak > 0.0 else audio.copy()


def _stereo_to_w_y(stereo: np.ndarray) -> np.ndarray:
    """(2, N) L/R to the pseudo-FOA channels that carry signal, W and Y: inverts L = W + Y, R = W - Y (stereo
    carries no Z or X)."""
    left, right = stereo
    return np.stack(((left + right) / 2, (left - right) / 2))


@functools.lru_cache(maxsize=8)
def _logmel_mel_matrix(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """The baseline's filterbank ``(n_fft // 2 + 1, n_mels)``: librosa defaults (Slaney scale and norm, 0 to sr/2)."""
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, htk=False, norm="slaney")
    mel.flags.writeable = False
    return mel.T
