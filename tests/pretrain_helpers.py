"""Small inputs for the pretraining tests: a fake FSD50K-style bank of tones and settings for tiny, quick rooms."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from seldflow.pretrain.rooms import RoomSettings
from seldflow.pretrain.synthesis import SynthesisSettings

SR = 8000
# Small, dry rooms: a few milliseconds of simulation and a short tail per mixture.
SMALL_ROOMS = RoomSettings(size_m=((5.0, 6.0), (4.5, 5.5), (3.0, 3.5)), rt60_s=(0.2, 0.4))


def write_fake_bank(root: Path, spec: Mapping[str, Mapping[str, int]], *, sample_rate: int = SR) -> None:
    """``<root>/<class>/<subclass>/<n>.wav``: ``spec[class][subclass]`` bursts of white noise, 0.3-0.8 s, each file
    its own. Broadband, so that a sound field's intensity points at its source (a pure tone in a room forms
    standing waves whose intensity need not)."""
    for c, (label, subclasses) in enumerate(sorted(spec.items())):
        for s, (subclass, count) in enumerate(sorted(subclasses.items())):
            for n in range(count):
                rng = np.random.default_rng([c, s, n])
                seconds = 0.3 + 0.5 * ((n + s) % 3) / 2
                t = np.arange(int(seconds * sample_rate)) / sample_rate
                burst = 0.2 * rng.standard_normal(t.size) * np.exp(-t / 0.5)
                path = root / label / subclass / f"{n:03d}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, np.clip(burst, -0.99, 0.99), sample_rate, subtype="PCM_16")


def small_settings(**overrides: object) -> SynthesisSettings:
    """3-s mixtures at 8 kHz in small dry rooms."""
    values = {"clip_seconds": 3.0, "sample_rate": SR, "rooms": SMALL_ROOMS, **overrides}
    return SynthesisSettings(**values)
