"""Tiny S5 settings shared by the stage tests and the S5 workflow test: seconds of work on a loaded CPU.

8 kHz is the lowest rate at which every embedded class generator still has energy (the alarm clock beeps near
2 kHz, at 4 kHz that is the Nyquist frequency). One clip per class, one noise file and one simulated room per
split keep the dataset build to the rooms' image-source simulation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seldflow.s5 import layout
from seldflow.s5.synthesis import make_embedded_banks, plan_soundscapes

RATE = 8000
DURATION = 0.5
GENERATOR: dict[str, Any] = {"sample_rate": RATE, "duration": DURATION}
SPLITS = ("train", "valid", "test")
EMBEDDED: dict[str, Any] = {
    "clips_per_class": dict.fromkeys(SPLITS, 1),
    "noise_per_split": dict.fromkeys(SPLITS, 1),
    "rooms_per_split": dict.fromkeys(SPLITS, 1),
    "min_seconds": 0.2,
    "max_seconds": 0.5,
    "noise_seconds": 1.0,
    "ir_seconds": 0.05,
    "valid_soundscapes": 4,
    "test_soundscapes": 6,
}
# Two encoder levels of 4 and 8 channels: n_fft // 2 = 32 is divisible by 2 ** 2, as the geometry requires.
SEPARATOR_ARGS: dict[str, Any] = {"channels": [4, 8], "n_fft": 64, "hop": 32, "condition_size": 8}
FRONT_END: dict[str, Any] = {"sample_rate": RATE, "n_fft": 128, "hop_length": 64, "n_mels": 8, "fmax": None}
# Three stand-in blocks halve the 8 mel bands three times; "2_blocks" then leaves the first block frozen.
TAGGER_ARGS: dict[str, Any] = {"front_end": FRONT_END, "channels": [4, 4, 4]}


def build_dataset(root: Path, *, seed: int = 3, plan_seed: int = 5) -> dict[str, Path]:
    """The embedded banks under ``root`` with the validation plan at its official place and a test plan beside.

    Returns the two plan indexes.
    """
    make_embedded_banks(root, EMBEDDED, sample_rate=RATE, seed=seed)
    plans = {"valid": layout.validation_metadata(root), "test": root / "plan" / "test.json"}
    for split, index in plans.items():
        count = EMBEDDED[f"{split}_soundscapes"]
        plan_soundscapes(root, GENERATOR, split=split, count=count, seed=plan_seed, out_json=index)
    return plans


def train_tiny(
    root: Path,
    out: Path,
    *,
    kind: str,
    epochs: int,
    seed: int = 11,
    model_args: dict[str, Any] | None = None,
    stage: str = "head",
    init_from: Path | None = None,
    lr: float = 1e-3,
) -> dict[str, Any]:
    """Train a tiny separator (``resunetk``) or stand-in tagger on ``root``'s banks; outputs under ``out``."""
    from seldflow.s5.generator import open_generator
    from seldflow.s5.soundscapes import read_descriptions
    from seldflow.s5.train import SeparatorObjective, TaggerObjective, TrainSettings, train_s5

    if kind == "separator":
        objective = SeparatorObjective("resunetk", model_args or SEPARATOR_ARGS)
    else:
        objective = TaggerObjective("standin", model_args or TAGGER_ARGS, stage=stage)
    settings = TrainSettings(epochs=epochs, epoch_length=4, batch_size=2, lr=lr, seed=seed, device="cpu")
    return train_s5(
        objective,
        open_generator(root, "train", GENERATOR),
        read_descriptions(layout.validation_metadata(root)),
        settings,
        checkpoint_out=out / "best.pt",
        metrics_out=out / "metrics.csv",
        state_dir=out / "state",
        init_from=init_from,
        validation_generator=open_generator(root, "valid", GENERATOR),
    )
