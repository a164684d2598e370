"""Shards: a split processed as fixed-size slices of clips, one job and one file per slice.

Synthesis and feature extraction scale with the number of clips, so they run per shard: the number of jobs grows
with shards rather than clips (the DAG stays small), a killed job costs one shard, and a cluster runs shards side
by side. Training and inference still see one array per split: :func:`write_index` joins the shard HDF5 files
into an HDF5 virtual dataset, which reads like the single-file layout without copying a byte of features.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
from h5py import h5d, h5s, h5t

from seldflow.errors import InputError
from seldflow.io import atomic_dir, atomic_file

# Per-clip arrays joined virtually; every other dataset is small and copied.
VIRTUAL_DATASETS = ("features",)


def shard_count(n_clips: int, shard_clips: int) -> int:
    """Shards of a split of ``n_clips`` clips; an empty split still gets one (empty) shard."""
    if shard_clips < 1:
        raise ValueError(f"shard_clips must be at least 1, got {shard_clips}")
    return max(1, math.ceil(n_clips / shard_clips))


def shard_range(shard: int, shard_clips: int, n_clips: int) -> range:
    """Clip indices of one shard (the last one may be shorter)."""
    if not 0 <= shard < shard_count(n_clips, shard_clips):
        raise ValueError(f"shard {shard} out of range for {n_clips} clips in shards of {shard_clips}")
    return range(shard * shard_clips, min(n_clips, (shard + 1) * shard_clips))


def shard_names(n_clips: int, shard_clips: int) -> list[str]:
    """Zero-padded shard ids, the values of the workflow's ``shard`` wildcard."""
    return [f"{shard:04d}" for shard in range(shard_count(n_clips, shard_clips))]


# --------------------------------------------------------------------------------------------------------------
# Manifests: the clips of a split, fixed before any shard runs, each with the signature of its files


def write_manifest(
    path: str | os.PathLike[str], stems: Sequence[str], signatures: Mapping[str, str] | None = None
) -> None:
    """One clip per line, sorted (the order every shard slices): the stem, a tab, its files' signature.

    ``signatures`` (stem -> :func:`files_digest` of the clip's audio and label files) lets each shard job
    depend on exactly its own files (:func:`shard_signature`); a clip without one gets an empty signature.
    """
    signatures = signatures or {}
    lines = (f"{stem}\t{signatures.get(stem, '')}\n" for stem in sorted(stems))
    with atomic_file(path) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")


def read_manifest(path: str | os.PathLike[str]) -> list[str]:
    """Clip stems of a manifest written by :func:`write_manifest`, in manifest order."""
    return list(_manifest_entries(path))


def shard_signature(path: str | os.PathLike[str], shard: int, shard_clips: int) -> str:
    """Digest of one shard's clips and their files' signatures, as the manifest lists them.

    A workflow parameter of the shard job: it changes exactly when a file of this shard changes (or the shard's
    clips do), so an edit reruns the shard holding the file and no other.
    """
    entries = list(_manifest_entries(path).items())
    digest = hashlib.sha256()
    for index in shard_range(shard, shard_clips, len(entries)):
        digest.update("\t".join(entries[index]).encode() + b"\n")
    return digest.hexdigest()


def files_digest(paths: Sequence[str | os.PathLike[str]]) -> str:
    """sha256 of the files' contents (``missing`` for an absent one), read in blocks.

    What the split check writes into the manifest for each clip: computed only when the split check runs (after
    :func:`folder_signature` saw a change), it makes the manifest depend on the data alone, so the same dataset gives
    the same manifest bytes, and a shard reruns only when one of its own files really changed.
    """
    digest = hashlib.sha256()
    for path in map(Path, paths):
        if not path.is_file():
            digest.update(b"missing\0")
            continue
        with path.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def folder_signature(folders: Sequence[str | os.PathLike[str]]) -> str:
    """Digest of the names, sizes and modification times (ns) of every visible entry of ``folders`` (missing ones too).

    A workflow parameter of the split check, so adding, removing or editing any file in place reruns it. Cheap
    (no file is read, as it runs on every workflow start); sizes and times are compared for equality, so a file
    replaced by an older copy counts as changed too.
    """
    digest = hashlib.sha256()
    for folder in map(Path, folders):
        digest.update(f"{folder}\n".encode())
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name) if folder.is_dir() else []
        for entry in entries:
            if not entry.name.startswith("."):
                digest.update(f"{entry.name}\t{_file_signature(entry)}\n".encode())
    return digest.hexdigest()


def _file_signature(path: Path | os.DirEntry[str]) -> str:
    try:
        stat = path.stat()  # follows links: a dataset of symlinks changes when their targets do
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _manifest_entries(path: str | os.PathLike[str]) -> dict[str, str]:
    """Stem -> signature; lines of manifests written before signatures existed (stem only) get an empty one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "clip manifest not found")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    return dict(line.partition("\t")[::2] for line in lines)


# --------------------------------------------------------------------------------------------------------------
# Gathering shard folders into one split folder


def gather_files(shard_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]) -> int:
    """Put the files of every shard folder into ``out_dir`` (hard links, copies across file systems).

    Links cost no space or time, so the split folder of the DCASE layout exists for readers that expect it while
    the shards stay the unit of work. Two shards holding the same file name is an error, not an overwrite.
    Hidden files (such as Snakemake's directory timestamps) are bookkeeping, not data, and stay behind.
    """
    seen: dict[str, Path] = {}
    with atomic_dir(out_dir) as tmp:
        for shard_dir in map(Path, shard_dirs):
            if not shard_dir.is_dir():
                raise InputError(shard_dir, "shard folder not found")
            for source in sorted(p for p in shard_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
                if source.name in seen:
                    raise InputError(source, f"file name also produced by shard {seen[source.name].parent}")
                seen[source.name] = source
                _link_or_copy(source, tmp / source.name)
    return len(seen)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


# --------------------------------------------------------------------------------------------------------------
# Joining feature shards


def content_digest(h5: h5py.File) -> str:
    """sha256 of a shard's per-clip arrays and clip names: changes whenever its data does, unlike size or mtime."""
    digest = hashlib.sha256()
    for name in (*VIRTUAL_DATASETS, "clips", "label_rows"):
        if name not in h5:
            continue
        digest.update(name.encode())
        dataset = h5[name]
        if dataset.dtype.kind == "O":
            digest.update("\n".join(_text(v) for v in dataset[()]).encode())
            continue
        # About a MB at a time, hashed from the array's own buffer: the digest is the same for any step, and a
        # feature job's memory stays one step above a clip's however many clips the shard holds.
        step = _rows_per_step(dataset)
        for start in range(0, dataset.shape[0], step):
            digest.update(np.ascontiguousarray(dataset[start : start + step]))
    return digest.hexdigest()


# Bytes of a dataset content_digest reads at a time.
DIGEST_STEP_BYTES = 1 << 20


def _rows_per_step(dataset: h5py.Dataset) -> int:
    """Leading-axis rows of ``dataset`` in about :data:`DIGEST_STEP_BYTES` (at least one)."""
    row_bytes = dataset.dtype.itemsize * math.prod(dataset.shape[1:])
    return max(1, DIGEST_STEP_BYTES // max(row_bytes, 1))


def write_index(shards: Sequence[str | os.PathLike[str]], out_h5: str | os.PathLike[str]) -> None:
    """Join feature shards into one file: virtual ``features``, concatenated ``clips``/``label_rows``.

    Source files are referenced relative to the index, so the feature folder can move as a whole. Shards must
    agree on every attribute (kind, settings) and on which datasets they hold; the index records each shard's
    :func:`content_digest`, so a changed shard changes the index bytes (training's resume check relies on that).
    """
    out_h5 = Path(out_h5)
    paths = [Path(p) for p in shards]
    if not paths:
        raise ValueError("write_index needs at least one shard")
    infos = [_shard_info(path) for path in paths]
    first = infos[0]
    for info in infos[1:]:
        _check_same(first, info)
    offsets = np.cumsum([0] + [info["clips"] for info in infos])
    total = int(offsets[-1])
    with atomic_file(out_h5) as tmp, h5py.File(tmp, "w", libver="v110") as h5:
        for key, value in first["attrs"].items():
            h5.attrs[key] = value
        listing = [
            {"file": os.path.relpath(path, out_h5.parent), "digest": info["digest"]}
            for path, info in zip(paths, infos, strict=True)
        ]
        h5.attrs["shards"] = json.dumps(listing)
        names = [name for info in infos for name in info["names"]]
        h5.create_dataset("clips", data=np.array(names, dtype=object), dtype=h5py.string_dtype(), track_times=False)
        if first["has_rows"]:
            rows = [_shift_clips(info["rows"], offset) for info, offset in zip(infos, offsets[:-1], strict=True)]
            h5.create_dataset("label_rows", data=np.concatenate(rows), track_times=False)
        for name in VIRTUAL_DATASETS:
            if name in first["shapes"]:
                _virtual_dataset(h5, name, paths, infos, offsets, total, out_h5.parent)


def _shard_info(path: Path) -> dict:
    if not path.is_file():
        raise InputError(path, "feature shard not found")
    with h5py.File(path, "r") as h5:
        if "clips" not in h5 or "features" not in h5:
            raise InputError(path, "not a feature shard: needs datasets 'features' and 'clips'")
        return {
            "attrs": {key: value for key, value in h5.attrs.items() if key != "digest"},
            "digest": str(h5.attrs.get("digest") or content_digest(h5)),
            "names": [_text(v) for v in h5["clips"][()]],
            "clips": int(h5["features"].shape[0]),
            "shapes": {name: (h5[name].shape[1:], h5[name].dtype) for name in VIRTUAL_DATASETS if name in h5},
            "has_rows": "label_rows" in h5,
            "rows": np.asarray(h5["label_rows"][()]) if "label_rows" in h5 else None,
            "path": path,
        }


def _shift_clips(rows: np.ndarray, offset: int) -> np.ndarray:
    """Label rows of a shard with their clip column (column 0) moved to the index's clip numbering."""
    shifted = rows.copy()
    shifted[:, 0] += offset
    return shifted


def _check_same(first: dict, other: dict) -> None:
    for key in sorted(set(first["attrs"]) | set(other["attrs"])):
        if _attr(first["attrs"].get(key)) != _attr(other["attrs"].get(key)):
            raise InputError(other["path"], f"differs from shard {first['path']}", field=key)
    if first["shapes"] != other["shapes"] or first["has_rows"] != other["has_rows"]:
        raise InputError(other["path"], f"datasets or shapes differ from shard {first['path']}")


def _virtual_dataset(
    h5: h5py.File, name: str, paths: list[Path], infos: list[dict], offsets: np.ndarray, total: int, root: Path
) -> None:
    item_shape, dtype = infos[0]["shapes"][name]
    layout = h5py.VirtualLayout(shape=(total, *item_shape), dtype=dtype)
    for path, info, offset in zip(paths, infos, offsets[:-1], strict=True):
        if info["clips"]:
            source = h5py.VirtualSource(os.path.relpath(path, root), name, shape=(info["clips"], *item_shape))
            layout[int(offset) : int(offset) + info["clips"]] = source
    # h5py's create_virtual_dataset stamps a modification time; building it here without one keeps the index
    # byte-identical across runs (the same guarantee every other output gives). Fill value NaN: an unreadable
    # source would surface as NaN, but check_sources refuses such a file before anyone reads it.
    dcpl = layout._get_dcpl(h5.filename)
    dcpl.set_obj_track_times(False)
    dcpl.set_fill_value(np.array([np.nan], dtype=dtype))
    space = h5s.create_simple((total, *item_shape))
    h5d.create(h5.id, name=name.encode(), tid=h5t.py_create(np.dtype(dtype), logical=1), space=space, dcpl=dcpl)


def check_sources(path: str | os.PathLike[str], h5: h5py.File) -> None:
    """Refuse an index whose shard files are gone: HDF5 would silently read the fill value instead."""
    base = Path(path).parent
    for name in VIRTUAL_DATASETS:
        if name in h5 and h5[name].is_virtual:
            for source in h5[name].virtual_sources():
                if not (base / source.file_name).is_file() and not Path(source.file_name).is_file():
                    raise InputError(path, f"feature shard {source.file_name} not found", field=name)


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _attr(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return _text(value) if isinstance(value, bytes) else value
