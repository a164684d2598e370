"""Training stage: fit a registered model on HDF5 feature files with the ADPIT loss; keep the best checkpoint.

Design choices that matter for reproducing a run:

* **Validation split.** A seeded ``validation_fraction`` of the *original* clips is held out together with their
  ``_LRswap`` twins: a twin is the same scene mirrored, so training on it while validating on its original would
  leak. Twins are never validated (the test protocol scores originals only). With fraction 0 nothing is held
  out, the learning rate stays constant, early stopping is off and the "best" checkpoint is the last epoch.
* **Model selection.** Highest validation F (non-finite F counts as 0). A tie replaces the stored best, as in
  the reference recipe (``>=``): the later model has seen more data at the same score. Only a strict improvement
  resets the early-stopping counter, so a plateau still stops the run.
* **Determinism and resumption.** Weights are initialised under ``seed``; the batch order of epoch ``e`` comes
  from a generator seeded by ``(seed, e)``. After every epoch ``state_dir/last.pt`` stores the model, optimiser,
  scheduler, RNG states and history with a fingerprint of the arguments and inputs; a rerun with the same
  fingerprint continues where it stopped and follows exactly the batches of an uninterrupted run. ``epochs``,
  ``device``, ``num_workers`` and ``max_memory_mb`` are not part of the fingerprint, so a finished run can be
  extended to more epochs; a state saved beyond the requested number of epochs is discarded.
* **Data path.** When the training clips' features and targets fit in ``max_memory_mb`` they are loaded once
  (one HDF5 read per file); otherwise each batch is read from the files with sorted indices, one chunk per clip.
* **Several processes.** ``processes > 1`` trains with DistributedDataParallel (see :mod:`seldflow.distributed`):
  each rank trains on a disjoint slice of every batch of the same global order, BatchNorm is synchronised, and the
  result equals single-process training up to float rounding (with dropout only statistically: every rank draws
  its own masks). Rank 0 alone validates and writes the state, metrics and checkpoint; every rank loads the state
  on resume. The number of processes is not part of the fingerprint (a run may resume with another count), and
  ``max_memory_mb`` is shared between the processes (each holds its own copy of the training clips).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from seldflow import distributed
from seldflow.errors import ConfigError, InputError
from seldflow.infer import LR_SWAP_SUFFIX, decode_multiaccdoa, predict_features, read_clip_names, resolve_device
from seldflow.io import atomic_file
from seldflow.labels import ADPIT_FIELDS, ADPIT_TRACKS, LABEL_FRAMES, N_CLASSES
from seldflow.loss import ADPITLoss
from seldflow.models import build_model, fit_input_norm, has_input_norm
from seldflow.score import compute_metrics

METRICS_COLUMNS = ("epoch", "train_loss", "val_loss", "val_F", "val_DOAE", "val_RDE", "lr", "seconds")
LABEL_SHAPE = (LABEL_FRAMES, ADPIT_TRACKS, ADPIT_FIELDS, N_CLASSES)
STATE_FILE = "last.pt"
# Validation decoding and scoring use the reference settings (inference thresholds, 20 degrees, RDE 1.0).
VALIDATION_SCORING = {"doa_threshold": 20.0, "reldist_threshold": 1.0}


# ---------------------------------------------------------------------------------------------------------------
# Feature files
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureFile:
    """What training needs to know about one labelled HDF5 feature file, read without loading the arrays."""

    path: Path
    names: tuple[str, ...]
    feature_shape: tuple[int, int, int]  # (channels, frames, bins) of one clip
    kind: str
    config: dict[str, Any]
    label_rows: np.ndarray  # (M, 7): clip index followed by the six CSV columns
    summary: dict[str, Any]  # attributes and dataset shapes, for the resume fingerprint


def open_feature_file(path: Path) -> FeatureFile:
    """Check that ``path`` is a labelled feature file with consistent datasets; read its small parts."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "feature file not found")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"cannot open as HDF5 ({exc})") from None
    with h5:
        names = read_clip_names(path, h5)
        for dataset in ("labels", "label_rows"):
            if dataset not in h5:
                raise InputError(path, f"has no '{dataset}' dataset: training needs labelled features", field=dataset)
        features, labels, rows = h5["features"], h5["labels"], h5["label_rows"]
        if features.ndim != 4:
            raise InputError(path, f"features must be (clips, channels, frames, bins), got {features.shape}")
        if labels.shape != (len(names), *LABEL_SHAPE):
            raise InputError(path, f"labels {labels.shape} != {(len(names), *LABEL_SHAPE)}", field="labels")
        label_rows = np.asarray(rows[()], dtype=np.int64)
        if label_rows.ndim != 2 or label_rows.shape[1] != 7:
            raise InputError(path, f"label_rows must be (rows, 7), got {label_rows.shape}", field="label_rows")
        clip_column = label_rows[:, 0]
        if len(clip_column) and (clip_column.min() < 0 or clip_column.max() >= len(names)):
            raise InputError(path, "label_rows refers to clips that do not exist", field="label_rows")
        attrs = {key: _plain(value) for key, value in sorted(h5.attrs.items())}
        try:
            config = json.loads(attrs.get("config", "{}"))
        except json.JSONDecodeError as exc:
            raise InputError(path, f"attribute is not valid JSON ({exc})", field="config") from None
        summary = {
            "name": path.name,
            "size": path.stat().st_size,
            "attrs": attrs,
            "shapes": {name: list(h5[name].shape) for name in sorted(h5.keys())},
        }
        return FeatureFile(
            path=path,
            names=tuple(names),
            feature_shape=tuple(features.shape[1:]),
            kind=str(attrs.get("kind", "")),
            config=config,
            label_rows=label_rows,
            summary=summary,
        )


def _plain(value: Any) -> Any:
    """HDF5 attribute as a JSON-friendly value (numpy scalars and bytes become Python types)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_consistent(files: Sequence[FeatureFile]) -> None:
    """All inputs must share feature kind and shape, and clip stems must be unique across them."""
    first = files[0]
    for other in files[1:]:
        if (other.kind, other.feature_shape) != (first.kind, first.feature_shape):
            raise InputError(
                other.path,
                f"features {other.kind!r} {other.feature_shape} differ from {first.kind!r} {first.feature_shape} "
                f"in {first.path}",
                field="features",
            )
    seen: dict[str, Path] = {}
    for file in files:
        for name in file.names:
            if name in seen:
                raise InputError(file.path, f"clip {name!r} also appears in {seen[name]}", field="clips")
            seen[name] = file.path


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


def _locate(files: Sequence[FeatureFile], indices: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Group global clip indices by file: (file number, positions in ``indices``, local clip indices)."""
    offsets = np.cumsum([0] + [len(f.names) for f in files])
    file_of = np.searchsorted(offsets, indices, side="right") - 1
    groups = []
    for number in np.unique(file_of):
        positions = np.flatnonzero(file_of == number)
        groups.append((int(number), positions, indices[positions] - offsets[number]))
    return groups


def read_clips(
    files: Sequence[FeatureFile], indices: np.ndarray, handles: Mapping[int, h5py.File] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Features and ADPIT targets of global clip ``indices``, in that order (HDF5 needs increasing reads)."""
    shape = files[0].feature_shape
    features = np.empty((len(indices), *shape), dtype=np.float32)
    labels = np.empty((len(indices), *LABEL_SHAPE), dtype=np.float32)
    for number, positions, local in _locate(files, np.asarray(indices, dtype=np.int64)):
        order = np.argsort(local, kind="stable")
        sorted_local = local[order]
        if handles is not None:
            h5 = handles[number]
            features[positions[order]] = h5["features"][sorted_local]
            labels[positions[order]] = h5["labels"][sorted_local]
        else:
            with h5py.File(files[number].path, "r") as h5:
                features[positions[order]] = _read_sorted(h5["features"], sorted_local)
                labels[positions[order]] = _read_sorted(h5["labels"], sorted_local)
    return features, labels


def _read_sorted(dataset: h5py.Dataset, sorted_local: np.ndarray) -> np.ndarray:
    """Read increasing indices as contiguous slices: far faster than a point selection for long runs."""
    breaks = np.flatnonzero(np.diff(sorted_local) != 1) + 1
    runs = np.split(sorted_local, breaks)
    return np.concatenate([dataset[run[0] : run[-1] + 1] for run in runs if len(run)])


class ClipStore:
    """Training clips, either held in memory or read batch by batch from the HDF5 files.

    Loading everything once is much faster on small demo data; streaming keeps memory bounded for the full
    DCASE development set. Either way ``batch(positions)`` returns copies, in the requested order.
    """

    def __init__(self, files: Sequence[FeatureFile], indices: np.ndarray, max_memory_mb: float) -> None:
        self.files = list(files)
        self.indices = np.asarray(indices, dtype=np.int64)
        per_clip = 4 * (math.prod(files[0].feature_shape) + math.prod(LABEL_SHAPE))
        self.in_memory = len(self.indices) * per_clip <= max_memory_mb * 2**20
        self._arrays = read_clips(self.files, self.indices) if self.in_memory else None
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
        return read_clips(self.files, self.indices[positions], self._handles)


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


def _iterate(store: ClipStore, batches: list[np.ndarray], num_workers: int) -> Iterator[tuple[Any, Any]]:
    dataset = _EpochBatches(store, batches)
    if num_workers <= 0:
        yield from (dataset[i] for i in range(len(dataset)))
        return
    # An own generator keeps the loader from drawing its worker seed from the global RNG, which drives dropout:
    # the result must not depend on num_workers.
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, shuffle=False, num_workers=num_workers, generator=torch.Generator().manual_seed(0)
    )
    yield from loader


# ---------------------------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------------------------


def train_step(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    use_amp: bool,
    weight: float = 1.0,
) -> float:
    """One optimisation step on a batch already on the model's device; returns the batch loss.

    The gradient is that of ``weight`` times the loss (a rank's share of a distributed batch, see
    :func:`seldflow.distributed.shard`); the returned loss is unweighted.
    """
    device_type = features.device.type
    with torch.autocast(device_type=device_type, dtype=torch.float16, enabled=use_amp):
        output = model(features)
    loss = loss_fn(output.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss if weight == 1.0 else loss * weight).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


@dataclass
class Validation:
    """Held-out clips, loaded once: features, targets and reference label rows keyed by stem."""

    names: list[str]
    features: np.ndarray
    labels: np.ndarray
    references: dict[str, np.ndarray]


def load_validation(files: Sequence[FeatureFile], indices: np.ndarray) -> Validation | None:
    """Read the held-out clips once; ``None`` when nothing is held out."""
    if len(indices) == 0:
        return None
    features, labels = read_clips(files, indices)
    names = [""] * len(indices)
    references: dict[str, np.ndarray] = {}
    for number, positions, local in _locate(files, np.asarray(indices, dtype=np.int64)):
        file = files[number]
        for position, clip in zip(positions, local, strict=True):
            names[position] = file.names[clip]
            references[names[position]] = file.label_rows[file.label_rows[:, 0] == clip, 1:]
    return Validation(names=names, features=features, labels=labels, references=references)


def validate(
    model: nn.Module, validation: Validation, *, loss_fn: nn.Module, batch_size: int, device: torch.device
) -> dict[str, float]:
    """Validation loss and the official F / DOAE / RDE of the decoded predictions on the held-out clips."""
    outputs = predict_features(model, validation.features, batch_size, device)
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(outputs), batch_size):
            output = torch.from_numpy(outputs[start : start + batch_size]).to(device)
            target = torch.from_numpy(validation.labels[start : start + batch_size]).to(device)
            total += float(loss_fn(output, target)) * len(output)
    predictions = {name: decode_multiaccdoa(out) for name, out in zip(validation.names, outputs, strict=True)}
    scores = compute_metrics(validation.references, predictions, **VALIDATION_SCORING)
    return {
        "val_loss": total / len(outputs),
        "val_F": float(scores["F"]),
        "val_DOAE": float(scores["DOAE"]),
        "val_RDE": float(scores["RDE"]),
    }


# ---------------------------------------------------------------------------------------------------------------
# State and outputs
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """Everything about the run so far that is not a module's own state."""

    epoch: int = 0
    best_score: float = -math.inf
    stale_epochs: int = 0
    best: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def record(self, score: float) -> bool:
        """Account for an epoch's selection score; ``True`` when it becomes the best (ties go to the later).

        Only a strict improvement resets the early-stopping count, so a long plateau still stops the run.
        """
        self.stale_epochs = 0 if score > self.best_score else self.stale_epochs + 1
        if score < self.best_score:
            return False
        self.best_score = score
        return True


def fingerprint(arguments: Mapping[str, Any], files: Sequence[FeatureFile]) -> str:
    """sha256 of the training arguments and the inputs' attributes and sizes: equal means resumable."""
    payload = {"arguments": arguments, "inputs": [file.summary for file in files]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _rng_state() -> dict[str, Any]:
    """Global RNG states as tensors and plain types (numpy's key array is not loadable with weights_only)."""
    numpy_state = np.random.get_state(legacy=False)
    key = torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))
    state = {
        "python": random.getstate(),
        "numpy": {**numpy_state, "state": {**numpy_state["state"], "key": key}},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    numpy_state = dict(state["numpy"])
    key = numpy_state["state"]["key"].numpy().astype(np.uint32)
    numpy_state["state"] = {**numpy_state["state"], "key": key}
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_state(
    path: Path,
    run_fingerprint: str,
    progress: Progress,
    modules: Mapping[str, Any],
    rng_ranks: list[dict[str, Any]] | None = None,
) -> None:
    state = {
        "fingerprint": run_fingerprint,
        "epoch": progress.epoch,
        "best_score": progress.best_score,
        "stale_epochs": progress.stale_epochs,
        "best": progress.best,
        "history": progress.history,
        "rng": _rng_state(),
        **{name: module.state_dict() for name, module in modules.items()},
    }
    if rng_ranks is not None:  # a distributed run: every rank's RNG state, so each resumes its own streams
        state["rng_ranks"] = rng_ranks
    with atomic_file(path) as tmp:
        torch.save(state, tmp)


def _resume(
    path: Path,
    run_fingerprint: str,
    epochs: int,
    modules: Mapping[str, Any],
    *,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> Progress | None:
    """Load ``path`` into ``modules`` when it belongs to this run; ``None`` means start fresh.

    Rank ``r`` of a distributed run restores its own RNG state when the state was saved by as many ranks;
    otherwise rank 0's, and a rank > 0 then reseeds from ``(seed, rank, epoch)``.
    """
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged state file must not block a rerun: it is only a cache
        tqdm.write(f"ignoring unreadable training state {path} ({type(exc).__name__})", file=sys.stderr)
        return None
    if state.get("fingerprint") != run_fingerprint:
        tqdm.write(f"training state {path} belongs to other settings or inputs: starting fresh", file=sys.stderr)
        return None
    if state["epoch"] > epochs:
        tqdm.write(f"training state {path} is past epoch {epochs}: starting fresh", file=sys.stderr)
        return None
    for name, module in modules.items():
        if state[name]:  # a disabled GradScaler (CPU run) saves an empty state that it cannot load back
            module.load_state_dict(state[name])
    rng_ranks = state.get("rng_ranks") or []
    if world_size > 1 and len(rng_ranks) == world_size:
        _restore_rng(rng_ranks[rank])
    else:
        _restore_rng(state["rng"])
        if rank > 0:
            distributed.seed_rank(seed, rank, state["epoch"])
    tqdm.write(f"resuming after epoch {state['epoch']} from {path}", file=sys.stderr)
    return Progress(
        epoch=state["epoch"],
        best_score=state["best_score"],
        stale_epochs=state["stale_epochs"],
        best=state["best"],
        history=list(state["history"]),
    )


def write_metrics(path: Path, history: Sequence[Mapping[str, float]]) -> None:
    with atomic_file(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METRICS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)


# ---------------------------------------------------------------------------------------------------------------
# Stage
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Trainer:
    """The network with everything that updates it; the dict of stateful parts is what a resume restores."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    scaler: torch.amp.GradScaler
    loss_fn: nn.Module
    device: torch.device
    use_amp: bool
    ddp: nn.Module | None = None  # the DistributedDataParallel wrapper of ``net`` in a multi-process run
    rank: int = 0
    world_size: int = 1

    @classmethod
    def create(
        cls,
        model: str,
        channels: int,
        model_args: Mapping[str, Any],
        *,
        seed: int,
        lr: float,
        weight_decay: float,
        lr_factor: float,
        lr_patience: int,
        device: str,
        amp: bool,
    ) -> Trainer:
        run_device = resolve_device(device)
        use_amp = amp and run_device.type == "cuda"
        if run_device.type == "cuda":  # reproducible kernels, as in the reference recipe
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        torch.manual_seed(seed)
        net = build_model(model, channels, **model_args).to(run_device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=lr_factor, patience=lr_patience
        )
        scaler = torch.amp.GradScaler(run_device.type, enabled=use_amp)
        return cls(net, optimizer, scheduler, scaler, ADPITLoss().to(run_device), run_device, use_amp)

    def stateful(self) -> dict[str, Any]:
        return {"model": self.net, "optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}

    def distribute(self) -> None:
        """Join the current process group: BatchNorm synchronised over the ranks, training through DDP.

        Called after the state is loaded (every rank loads it); DDP's construction broadcasts rank 0's weights and
        buffers. ``net`` stays the unwrapped module: validation and saving use it.
        """
        cuda = self.device.type == "cuda"
        self.net = distributed.convert_sync_batchnorm(self.net, cuda=cuda)
        device_ids = [self.device.index] if cuda else None
        self.ddp = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=device_ids)
        self.rank, self.world_size = distributed.rank(), distributed.world_size()

    def train_epoch(self, store: ClipStore, batches: list[np.ndarray], num_workers: int, desc: str) -> float:
        """Mean training loss over one pass of the given batches."""
        if self.ddp is not None:
            return self._train_epoch_distributed(store, batches, num_workers, desc)
        self.net.train()
        total, seen = 0.0, 0
        bar = tqdm(_iterate(store, batches, num_workers), total=len(batches), desc=desc, leave=False)
        for features, labels in bar:
            loss = train_step(
                self.net, features.to(self.device), labels.to(self.device),
                loss_fn=self.loss_fn, optimizer=self.optimizer, scaler=self.scaler, use_amp=self.use_amp,
            )  # fmt: skip
            total += loss * len(features)
            seen += len(features)
            bar.set_postfix(loss=f"{loss:.4f}")
        return total / max(seen, 1)

    def _train_epoch_distributed(
        self, store: ClipStore, batches: list[np.ndarray], num_workers: int, desc: str
    ) -> float:
        """This rank's slice of every global batch; the mean loss over all ranks' clips."""
        self.net.train()
        shards = [distributed.shard(batch, self.rank, self.world_size) for batch in batches]
        total, seen = 0.0, 0
        loader = _iterate(store, [part for part, _ in shards], num_workers)
        bar = tqdm(loader, total=len(shards), desc=desc, leave=False, disable=self.rank != 0)
        for (features, labels), (_, weight) in zip(bar, shards, strict=True):
            loss = train_step(
                self.ddp, features.to(self.device), labels.to(self.device), loss_fn=self.loss_fn,
                optimizer=self.optimizer, scaler=self.scaler, use_amp=self.use_amp, weight=weight,
            )  # fmt: skip
            total += loss * len(features)
            seen += len(features)
            bar.set_postfix(loss=f"{loss:.4f}")
        total, seen = distributed.all_reduce_sum([total, seen], self.device)
        return total / max(seen, 1)


def train(
    *,
    train_h5: list[Path],
    checkpoint: Path,
    metrics_csv: Path,
    state_dir: Path,
    seed: int,
    model: str,
    model_args: dict,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    validation_fraction: float,
    lr_factor: float = 0.8,
    lr_patience: int = 6,
    early_stop_patience: int = 0,
    device: str = "auto",
    amp: bool = True,
    num_workers: int = 0,
    max_memory_mb: float = 3072,
    processes: int = 1,
    pretrained: str | None = None,
) -> None:
    """Train ``model`` on the labelled ``train_h5`` files; write the best ``checkpoint`` and ``metrics_csv``.

    AdamW with ``ReduceLROnPlateau`` (mode max) on validation F, optional early stopping after
    ``early_stop_patience`` epochs without improvement, mixed precision only on CUDA. The checkpoint holds only
    tensors and plain types (``model_state``, ``model_name``, ``model_args``, ``in_channels``,
    ``feature_kind``, ``feature_config``, ``epoch``, ``val_metrics``), so ``torch.load(weights_only=True)``
    reads it. See the module docstring for validation, selection, resumption and the data path.

    ``processes > 1`` spawns that many DDP processes (gloo on CPU, nccl with one CUDA device per process) that run
    this function inside one process group; see :mod:`seldflow.distributed`.

    ``pretrained``: a PSELDNets checkpoint loaded into the fresh model before the first epoch (not on resume);
    see :func:`seldflow.models.transfer.load_pseldnet`.
    """
    call = dict(locals())  # every argument, for the processes of a distributed run
    if processes > 1 and not distributed.is_active():
        _launch(call)
        return
    rank, world = distributed.rank(), distributed.world_size()
    if epochs < 1 or batch_size < 1:
        raise ConfigError("train", "epochs" if epochs < 1 else "batch_size", "must be at least 1")
    files = _open_inputs(train_h5)
    train_ids, val_ids = split_validation([n for f in files for n in f.names], validation_fraction, seed)
    channels, _frames, bins = files[0].feature_shape
    resolved_args = {"n_mels": bins, **model_args}  # the model is sized for the features it is trained on
    arguments = {
        "seed": seed, "model": model, "model_args": resolved_args, "batch_size": batch_size, "lr": lr,
        "weight_decay": weight_decay, "validation_fraction": validation_fraction, "lr_factor": lr_factor,
        "lr_patience": lr_patience, "early_stop_patience": early_stop_patience, "amp": amp,
    }  # fmt: skip
    if pretrained:  # only when set, so fingerprints of runs without it are unchanged
        arguments["pretrained"] = str(pretrained)
    run_fingerprint = fingerprint(arguments, files)
    trainer = Trainer.create(
        model, channels, resolved_args, seed=seed, lr=lr, weight_decay=weight_decay, lr_factor=lr_factor,
        lr_patience=lr_patience, device=device, amp=amp,
    )  # fmt: skip
    state_path = Path(state_dir) / STATE_FILE
    resumed = _resume(state_path, run_fingerprint, epochs, trainer.stateful(), seed=seed, rank=rank, world_size=world)
    if resumed is None and rank > 0:  # same initial weights as rank 0, but dropout streams of its own
        distributed.seed_rank(seed, rank, 0)
    progress = resumed or Progress()
    if pretrained and resumed is None:  # initialises a fresh run only; a resumed one has its own weights
        from seldflow.models.transfer import load_pseldnet

        report = load_pseldnet(trainer.net, Path(pretrained))
        if rank == 0:
            tqdm.write(report.summary(), file=sys.stderr)
    store = ClipStore(files, train_ids, max_memory_mb / world)
    if progress.epoch == 0 and has_input_norm(trainer.net):  # a resumed run restores them with the model state
        fit_input_norm(trainer.net, *store.feature_statistics())
    if world > 1:
        trainer.distribute()
    validation = load_validation(files, val_ids) if rank == 0 else None
    mode = "in memory" if store.in_memory else "streamed from HDF5"
    held_out = 0 if validation is None else len(validation.names)
    if rank == 0:
        ranks = f" in {world} processes" if world > 1 else ""
        tqdm.write(f"training on {len(store)} clips ({mode}){ranks}, validating on {held_out}", file=sys.stderr)

    try:
        for epoch in range(progress.epoch + 1, epochs + 1):
            if 0 < early_stop_patience <= progress.stale_epochs:
                tqdm.write(f"early stop: no improvement in {progress.stale_epochs} epochs", file=sys.stderr)
                break
            started = time.perf_counter()
            current_lr = trainer.optimizer.param_groups[0]["lr"]
            batches = epoch_batches(len(store), batch_size, seed, epoch)
            train_loss = _train_epoch(trainer, store, batches, num_workers, epoch=epoch, epochs=epochs)
            scores, score = _evaluate(trainer, validation, batch_size, epoch, validating=len(val_ids) > 0)
            row = {"epoch": epoch, "train_loss": train_loss, **scores, "lr": current_lr}
            row["seconds"] = round(time.perf_counter() - started, 3)
            progress.history.append(row)
            progress.epoch = epoch
            if progress.record(score) and rank == 0:
                progress.best = _checkpoint_payload(trainer.net, epoch, scores, model, resolved_args, files[0])
            rng_ranks = distributed.gather_objects(_rng_state()) if world > 1 else None
            if rank == 0:
                _save_state(state_path, run_fingerprint, progress, trainer.stateful(), rng_ranks)
                write_metrics(Path(metrics_csv), progress.history)
                tqdm.write(_summary(row), file=sys.stderr)
    finally:
        store.close()
    if rank == 0:
        _write_outputs(Path(checkpoint), Path(metrics_csv), progress, state_path)


def _launch(call: dict[str, Any]) -> None:
    """Check the inputs here (errors keep their type), then run :func:`train` in ``call["processes"]`` ranks."""
    processes = call["processes"]
    files = _open_inputs(call["train_h5"])
    names = [n for f in files for n in f.names]
    train_ids, _ = split_validation(names, call["validation_fraction"], call["seed"])
    smallest_batch = min(call["batch_size"], len(train_ids))
    if smallest_batch < processes:
        raise ConfigError(
            "train", "processes", f"{processes} processes need batches of at least {processes} clips, "
            f"got {smallest_batch}"
        )  # fmt: skip
    cuda = resolve_device(call["device"]).type == "cuda"
    distributed.launch(train, call, processes, cuda=cuda, timeout_s=distributed.JOIN_TIMEOUT_S)


def _open_inputs(train_h5: Sequence[Path]) -> list[FeatureFile]:
    files = [open_feature_file(Path(p)) for p in train_h5]
    if not files:
        raise ConfigError("train", "train_h5", "no training feature files")
    check_consistent(files)
    return files


def _train_epoch(
    trainer: Trainer, store: ClipStore, batches: list[np.ndarray], num_workers: int, *, epoch: int, epochs: int
) -> float:
    """One pass over the epoch's batches (a separate function so tests can observe which epochs train)."""
    return trainer.train_epoch(store, batches, num_workers, desc=f"epoch {epoch}/{epochs}")


def _evaluate(
    trainer: Trainer, validation: Validation | None, batch_size: int, epoch: int, *, validating: bool = True
) -> tuple[dict[str, float], float]:
    """Validation scores and the selection score; steps the plateau scheduler on validation F.

    In a distributed run only rank 0 holds ``validation``; the other ranks receive its scores, so every rank's
    scheduler and early-stopping count follow the same values.
    """
    if not validating or (validation is None and trainer.world_size == 1):
        nan = math.nan
        return {"val_loss": nan, "val_F": nan, "val_DOAE": nan, "val_RDE": nan}, float(epoch)  # latest is best
    scores = None
    if validation is not None:
        scores = validate(
            trainer.net, validation, loss_fn=trainer.loss_fn, batch_size=batch_size, device=trainer.device
        )
    scores = distributed.broadcast_object(scores)
    score = scores["val_F"] if math.isfinite(scores["val_F"]) else 0.0
    trainer.scheduler.step(score)
    return scores, score


def _write_outputs(checkpoint: Path, metrics_csv: Path, progress: Progress, state_path: Path) -> None:
    """Final outputs, also when a resumed run had no epoch left to train."""
    if progress.best is None:  # unreachable unless the saved state was edited by hand
        raise InputError(state_path, "training state has no best model")
    with atomic_file(checkpoint) as tmp:
        torch.save(progress.best, tmp)
    write_metrics(metrics_csv, progress.history)


def _checkpoint_payload(
    net: nn.Module,
    epoch: int,
    scores: Mapping[str, float],
    model_name: str,
    model_args: Mapping[str, Any],
    file: FeatureFile,
) -> dict[str, Any]:
    """What inference needs to rebuild the model, as tensors and plain types only."""
    return {
        "model_state": {key: value.detach().cpu().clone() for key, value in net.state_dict().items()},
        "model_name": model_name,
        "model_args": dict(model_args),
        "in_channels": file.feature_shape[0],
        "feature_kind": file.kind,
        "feature_config": file.config,
        "epoch": epoch,
        "val_metrics": dict(scores),
    }


def _summary(row: Mapping[str, float]) -> str:
    return (
        f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f}, "
        f"F {row['val_F']:.3f}, DOAE {row['val_DOAE']:.1f}, RDE {row['val_RDE']:.3f}, "
        f"lr {row['lr']:.2e}, {row['seconds']:.1f} s"
    )
