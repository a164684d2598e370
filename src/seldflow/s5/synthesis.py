"""S5 synthesis stage: the embedded dataset's banks, its validation and test soundscape plans, and the test
soundscapes rendered shard by shard and gathered into the DCASE2025 Task 4 layout (:mod:`seldflow.s5.layout`).

A plan is a list of generator descriptions (:meth:`seldflow.s5.generator.S5Generator.sample`), written as an
index in the official ``valid.json`` form with one description file per soundscape beside it: the validation plan
is what training rebuilds its fixed validation mixtures from, the test plan what the synthesis shards render.
Each soundscape is drawn from its own seed (the plan's seed and its index), so a plan does not depend on how it
is sharded, and rendering a description is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seldflow.io import atomic_dir
from seldflow.s5 import layout
from seldflow.s5.embedded import make_s5_bank
from seldflow.s5.generator import AddedBanks, open_generator
from seldflow.s5.soundscapes import (
    ORACLE_DIR,
    SOUNDSCAPE_DIR,
    read_descriptions,
    sample_descriptions,
    soundscape_name,
    write_descriptions,
    write_soundscapes,
)
from seldflow.shards import gather_files, shard_range

# Keys of the config's ``s5.embedded`` that are plan sizes, not bank settings.
PLAN_KEYS = ("valid_soundscapes", "test_soundscapes")


def make_embedded_banks(root: str | Path, embedded: Mapping[str, Any], *, sample_rate: int, seed: int) -> None:
    """Write the embedded source banks and rooms under ``root``'s ``dev_set/`` (see :func:`make_s5_bank`)."""
    settings = {key: value for key, value in embedded.items() if key not in PLAN_KEYS}
    make_s5_bank(layout.dev_dir(root), seed=seed, sample_rate=sample_rate, **settings)


def plan_soundscapes(
    root: str | Path,
    generator: Mapping[str, Any],
    *,
    split: str,
    count: int,
    seed: int,
    out_json: str | Path,
    added: AddedBanks | None = None,
) -> None:
    """Draw ``count`` soundscapes of bank split ``split`` and write them as an index with its descriptions.

    ``added``: the cleaned added banks joined to each split (see :func:`seldflow.s5.generator.open_generator`).
    """
    source = open_generator(root, split, generator, added)
    descriptions = sample_descriptions(source, count, seed)
    names = [soundscape_name(index, prefix=split) for index in range(count)]
    write_descriptions(out_json, descriptions, names)


def render_shard(
    root: str | Path,
    generator: Mapping[str, Any],
    *,
    plan: str | Path,
    shard: int,
    shard_soundscapes: int,
    out_dir: str | Path,
    added: AddedBanks | None = None,
) -> None:
    """Render shard ``shard`` of a test plan into ``out_dir`` (soundscape/, oracle_target/, metadata).

    ``added`` must hold the added banks the plan was drawn with (their clips are named in its descriptions).
    """
    descriptions = read_descriptions(plan)
    indices = shard_range(shard, shard_soundscapes, len(descriptions))
    chosen = [descriptions[index] for index in indices]
    source = open_generator(root, "test", generator, added)
    write_soundscapes(out_dir, source, chosen, names=[d["name"] for d in chosen])


def gather_test(shard_dirs: Sequence[str | Path], out_dir: str | Path) -> None:
    """Join the shards' soundscapes and oracle targets into ``test/soundscape`` and ``test/oracle_target``."""
    with atomic_dir(out_dir) as tmp:
        for folder in (SOUNDSCAPE_DIR, ORACLE_DIR):
            gather_files([Path(shard) / folder for shard in shard_dirs], tmp / folder)


__all__ = ["gather_test", "make_embedded_banks", "plan_soundscapes", "render_shard"]
