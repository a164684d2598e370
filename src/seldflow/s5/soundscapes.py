"""Rendered S5 soundscapes on disk, in the Task 4 test layout, with the descriptions that rebuild them.

Layout of one split folder::

    soundscape/<name>.wav                 the C-channel mixture
    oracle_target/<name>_<Label>.wav      one mono dry target per non-silent slot
    metadata/<name>.json                  the soundscape's description (generator metadata plus its name)
    metadata.json                         index: [{"metadata_path", "ref_event", "soundscape"}, ...]

The index follows the official ``valid.json``: a list with, per soundscape, ``metadata_path`` (relative to the
index's folder) and ``ref_event`` (slot labels, padded with "silence"); ``soundscape`` adds the name. The
audio is stored as 32-bit float WAV, so reading a file back gives exactly what rendering its description gives.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seldflow.errors import InputError
from seldflow.io import atomic_dir, atomic_file, write_audio
from seldflow.s5.files import source_file_name
from seldflow.s5.generator import S5Generator
from seldflow.s5.vocabulary import SILENCE

SOUNDSCAPE_DIR = "soundscape"
ORACLE_DIR = "oracle_target"
METADATA_DIR = "metadata"
INDEX_NAME = "metadata.json"


def soundscape_name(index: int, prefix: str = "soundscape") -> str:
    """Name of the ``index``-th soundscape of a split (zero-padded so that names sort in order)."""
    return f"{prefix}_{index:05d}"


def sample_descriptions(generator: S5Generator, count: int, seed: int) -> list[dict]:
    """``count`` descriptions, the k-th drawn from its own seed (seed, k), so that one never depends on another."""
    return [generator.sample(np.random.default_rng([seed, k])) for k in range(count)]


def write_soundscapes(
    out_dir: str | os.PathLike[str],
    generator: S5Generator,
    descriptions: Sequence[Mapping[str, Any]],
    *,
    names: Sequence[str] | None = None,
) -> Path:
    """Render ``descriptions`` and write them in the layout above (atomically); returns the index path."""
    names = list(names) if names is not None else [soundscape_name(k) for k in range(len(descriptions))]
    if len(names) != len(descriptions) or len(set(names)) != len(names):
        raise ValueError("need one distinct name per description")
    rate = generator.settings.sample_rate
    index = []
    with atomic_dir(out_dir) as tmp:
        for name, description in zip(names, descriptions, strict=True):
            metadata = {**description, "name": name}
            rendered = generator.render(metadata)
            write_audio(tmp / SOUNDSCAPE_DIR / f"{name}.wav", rendered.mixture, rate, subtype="FLOAT")
            for label, target in zip(rendered.labels, rendered.targets, strict=True):
                if label != SILENCE:
                    write_audio(
                        tmp / ORACLE_DIR / source_file_name(name, label), target[None, :], rate, subtype="FLOAT"
                    )
            metadata_path = f"{METADATA_DIR}/{name}.json"
            _write_json(tmp / metadata_path, metadata)
            index.append({"metadata_path": metadata_path, "ref_event": list(rendered.labels), "soundscape": name})
        _write_json(tmp / INDEX_NAME, index)
    return Path(out_dir) / INDEX_NAME


def read_descriptions(index_path: str | os.PathLike[str]) -> list[dict]:
    """The descriptions an index names, in index order, each with its ``name``; checks ``ref_event`` agrees."""
    index_path = Path(index_path)
    entries = _read_json(index_path)
    if not isinstance(entries, list):
        raise InputError(index_path, "expected a list of soundscape entries")
    descriptions = []
    for row, entry in enumerate(entries):
        if not isinstance(entry, dict) or "metadata_path" not in entry:
            raise InputError(index_path, "entry without metadata_path", field="metadata_path", row=row)
        path = index_path.parent / entry["metadata_path"]
        description = _read_json(path)
        description.setdefault("name", entry.get("soundscape", Path(entry["metadata_path"]).stem))
        if "ref_event" in entry and sorted(entry["ref_event"]) != sorted(description.get("labels", [])):
            raise InputError(index_path, f"ref_event disagrees with {path.name}", field="ref_event", row=row)
        descriptions.append(description)
    return descriptions


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputError(path, "metadata file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from exc


def write_descriptions(
    index_path: str | os.PathLike[str], descriptions: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> None:
    """Write descriptions without audio: ``<index>`` plus ``<index stem>/<name>.json`` beside it (a plan).

    The official ``valid.json`` layout (``metadata/valid.json`` with ``metadata/valid/*.json``); the folder is
    replaced as a whole, then the index, so a reader never sees an index naming missing files.
    """
    index_path = Path(index_path)
    folder = index_path.with_suffix("")
    index = []
    with atomic_dir(folder) as tmp:
        for name, description in zip(names, descriptions, strict=True):
            _write_json(tmp / f"{name}.json", {**description, "name": name})
            index.append(
                {
                    "metadata_path": f"{folder.name}/{name}.json",
                    "ref_event": list(description["labels"]),
                    "soundscape": name,
                }
            )
    with atomic_file(index_path) as tmp_index:
        _write_json(tmp_index, index)
