"""Training clips: which clips train and validate, and reading their features and targets batch by batch.

Design choices that matter for reproducing a run:

* **Validation split.** A seeded ``validation_fraction`` of the *original* clips is held out together with their
  ``_LRswap`` twins: a twin is the same scene mirrored, so training on it while validating on its original would
  leak. Twins are never validated (the test protocol scores originals only).
* **Data path.** When the training clips' features and targets fit in ``max_memory_mb`` they are loaded once
  (one HDF5 read per file); otherwise each batch is read from the files with sorted indices, one chunk per clip.
* **Targets.** Built by the task from each clip's native label rows when the clip is read, so one feature file
  serves every method (ACCDOA, multi-ACCDOA, EINV2, ...).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h5py
import numpy as np
import torch

from seldflow.errors import ConfigError
from seldflow.feature_files import LR_SWAP_SUFFIX, FeatureFile
from seldflow.tasks import Task


def split_validation(names: Sequence[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of ``names``: a seeded ``fraction`` of originals held out with their twins.

    Twins of validation clips are in neither set. At least one original is held out when ``fraction > 0``, and
    at least one stays for training.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError("train", "validation_fraction", f"must be in [0, 1), got {fraction}")
    originals = [i for i, name in enumerate(names) if not name.endswith(LR_SWAP_SUFFIX)]
    n_val = 0 if fraction == 0 else max(1, round(fraction * len(originals)))
    if n_val >= len(originals):
        raise ConfigError(
            "train", "validation_fraction", f"{fraction} leaves no training clips out of {len(originals)}"
        )
    chosen = np.random.default_rng(seed).permutation(len(originals))[:n_val]
    val_names = {names[originals[i]] for i in chosen}
    held_out = val_names | {name + LR_SWAP_SUFFIX for name in val_names}
    val = np.array(sorted(originals[i] for i in chosen), dtype=np.int64)
    train = np.array([i for i, name in enumerate(names) if name not in held_out], dtype=np.int64)
    return train, val


def locate(files: Sequence[FeatureFile], indices: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Group global clip indices by file: (file number, positions in ``indices``, local clip indices)."""
    offsets = np.cumsum([0] + [len(f.names) for f in files])
    file_of = np.searchsorted(offsets, indices, side="right") - 1
    groups = []
    for number in np.unique(file_of):
        positions = np.flatnonzero(file_of == number)
        groups.append((int(number), positions, indices[positions] - offsets[number]))
    return groups


def read_clips(
    files: Sequence[FeatureFile],
    indices: np.ndarray,
    task: Task,
    handles: Mapping[int, h5py.File] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and training targets of global clip ``indices``, in that order (HDF5 needs increasing reads)."""
    shape = files[0].feature_shape
    n_frames = files[0].label_frames
    features = np.empty((len(indices), *shape), dtype=np.float32)
    targets = np.empty((len(indices), *task.target_shape(n_frames)), dtype=np.float32)
    for number, positions, local in locate(files, np.asarray(indices, dtype=np.int64)):
        order = np.argsort(local, kind="stable")
        if handles is not None:
            _read_runs(handles[number]["features"], local[order], features, positions[order])
        else:
            with h5py.File(files[number].path, "r") as h5:
                _read_runs(h5["features"], local[order], features, positions[order])
        for position, clip in zip(positions, local, strict=True):
            targets[position] = task.targets(files[number].clip_rows(clip), n_frames)
    return features, targets


def _read_runs(dataset: h5py.Dataset, sorted_local: np.ndarray, out: np.ndarray, out_positions: np.ndarray) -> None:
    """Read increasing indices run by run (one contiguous slice each) into ``out[out_positions]``.

    Never h5py's fancy (point) selection: for a shuffled batch of 32 demo clips from a shard index it took 290 ms,
    clip by clip 4 ms; whole runs are as fast for long ones (loading a split).
    """
    breaks = np.flatnonzero(np.diff(sorted_local) != 1) + 1
    for run, where in zip(np.split(sorted_local, breaks), np.split(out_positions, breaks), strict=True):
        if len(run) == 1:
            out[where[0]] = dataset[run[0]]
        elif len(run):
            out[where] = dataset[run[0] : run[-1] + 1]


class ClipStore:
    """Training clips, either held in memory or read batch by batch from the HDF5 files.

    Loading everything once is much faster on small demo data; streaming keeps memory bounded for the full
    DCASE development set. Either way ``batch(positions)`` returns copies, in the requested order.
    """

    def __init__(self, files: Sequence[FeatureFile], indices: np.ndarray, task: Task, max_memory_mb: float) -> None:
        self.files = list(files)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.task = task
        target_size = math.prod(task.target_shape(files[0].label_frames))
        per_clip = 4 * (math.prod(files[0].feature_shape) + target_size)
        self.in_memory = len(self.indices) * per_clip <= max_memory_mb * 2**20
        self._arrays = read_clips(self.files, self.indices, task) if self.in_memory else None
        self._handles: dict[int, h5py.File] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def close(self) -> None:
        for handle in (self._handles or {}).values():
            handle.close()
        self._handles = None

    def feature_statistics(self, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per channel and bin over every clip and frame, ``(channels, bins)``.

        Accumulated in float64 chunk by chunk so a streamed store never holds more than ``chunk`` clips.
        """
        total = total_sq = None
        count = 0
        for start in range(0, len(self), chunk):
            features = self.batch(np.arange(start, min(start + chunk, len(self))))[0].astype(np.float64)
            part, part_sq = features.sum(axis=(0, 2)), np.square(features).sum(axis=(0, 2))
            total = part if total is None else total + part
            total_sq = part_sq if total_sq is None else total_sq + part_sq
            count += features.shape[0] * features.shape[2]
        mean = total / count
        return mean, np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))

    def batch(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is not None:
            return self._arrays[0][positions], self._arrays[1][positions]
        if self._handles is None:  # opened lazily so that each DataLoader worker gets its own handles
            self._handles = {i: h5py.File(f.path, "r") for i, f in enumerate(self.files)}
        return read_clips(self.files, self.indices[positions], self.task, self._handles)


def _read_ahead(dataset: _EpochBatches) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``dataset``'s items in order, the next one read in a background thread while the caller uses this one.

    Why: a streamed batch is read while the model steps (torch's kernels and a GPU's wait release the GIL), so
    neither waits on the files where the step is the slower (``make bench``'s input-pipeline rows measure both).
    One batch ahead bounds the extra memory to one batch; the order, and so training, is unchanged.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seldflow-read-ahead") as reader:
        pending = reader.submit(dataset.__getitem__, 0) if len(dataset) else None
        for item in range(len(dataset)):
            current = pending.result()
            pending = reader.submit(dataset.__getitem__, item + 1) if item + 1 < len(dataset) else None
            yield current


class _EpochBatches(torch.utils.data.Dataset):
    """One item per batch, so DataLoader workers can prefetch whole batches from a :class:`ClipStore`."""

    def __init__(self, store: ClipStore, batches: list[np.ndarray]) -> None:
        self.store = store
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        features, labels = self.store.batch(self.batches[item])
        return torch.from_numpy(features), torch.from_numpy(labels)


def epoch_batches(n_clips: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled batches of store positions for ``epoch``, a pure function of (seed, epoch).

    The last partial batch is dropped (as in the reference recipe) so BatchNorm never sees a tiny batch; the
    shuffle changes every epoch, so no clip is left out systematically. A store smaller than one batch gives a
    single batch of everything.
    """
    order = np.random.default_rng([seed, epoch]).permutation(n_clips)
    if n_clips <= batch_size:
        return [order]
    n_full = n_clips // batch_size
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(n_full)]


def iterate_batches(store: ClipStore, batches: list[np.ndarray], num_workers: int) -> Iterator[tuple[Any, Any]]:
    """The batches in order: from memory; streamed from the HDF5 files one batch ahead in a thread of this process
    (``num_workers`` 0); or by that many DataLoader processes."""
    dataset = _EpochBatches(store, batches)
    if num_workers <= 0:
        yield from (_read_ahead(dataset) if not store.in_memory else (dataset[i] for i in range(len(dataset))))
        return
    # An own generator keeps the loader from drawing its worker seed from the global RNG, which drives dropout:
    # the result must not depend on num_workers.
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, shuffle=False, num_workers=num_workers, generator=torch.Generator().manual_seed(0)
    )
    yield from loader
