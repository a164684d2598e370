"""Where the parts of a DCASE2025 Task 4 dataset live under its root: one owner for the rules and the stages.

The development set unpacks as ``dev_set/`` with the source banks (``sound_event``, ``interference``, ``noise``,
``room_ir``, each split into ``train`` and ``valid``), the fixed validation soundscapes (``metadata/valid.json``)
and the test soundscapes with their oracle targets (``test/soundscape``, ``test/oracle_target``). The embedded
demo dataset is written in the same layout, so every stage after it reads either alike.
"""

from __future__ import annotations

from pathlib import Path

DEV_SET = "dev_set"
# Source banks of the development set, each with one sub-folder per split.
BANKS = ("sound_event", "interference", "noise", "room_ir")
SPLITS = ("train", "valid")


def dev_dir(root: str | Path) -> Path:
    return Path(root) / DEV_SET


def bank_dir(root: str | Path, bank: str) -> Path:
    """``dev_set/<bank>`` (its splits are sub-folders)."""
    return dev_dir(root) / bank


def validation_metadata(root: str | Path) -> Path:
    """The JSON list from which the validation soundscapes are rebuilt."""
    return dev_dir(root) / "metadata" / "valid.json"


def validation_descriptions(root: str | Path) -> Path:
    """The folder of one description file per validation soundscape, which the index names."""
    return validation_metadata(root).with_suffix("")


def test_dir(root: str | Path) -> Path:
    return dev_dir(root) / "test"


def test_soundscapes(root: str | Path) -> Path:
    """Folder of the test mixtures ``<soundscape>.wav``."""
    return test_dir(root) / "soundscape"


def test_oracle(root: str | Path) -> Path:
    """Folder of the test references ``<soundscape>_<Label>.wav``."""
    return test_dir(root) / "oracle_target"
