"""Training stage: fit a registered model on HDF5 feature files with the task's loss; keep the best checkpoint.

What the stage does not decide lives elsewhere: the task contract (:mod:`seldflow.tasks`: targets, loss, decoding
and the validation metric), the clips (:mod:`seldflow.clipstore`: validation split, in-memory or streamed
batches) and the resumable state (:mod:`seldflow.training_state`).

* **Model selection.** The task's selection figure (validation F for DCASE2025, the SELD score for the
  DCASE2021-2024 metrics; non-finite counts as worst). A tie replaces the stored best, as in the reference recipe
  (``>=``): the later model has seen more data at the same score. Only a strict improvement resets the
  early-stopping counter, so a plateau still stops the run. With ``validation_fraction`` 0 nothing is held out,
  the learning rate stays constant, early stopping is off and the "best" checkpoint is the last epoch.
* **Determinism.** Weights are initialised under ``seed``; the batch order of epoch ``e`` comes from a generator
  seeded by ``(seed, e)``, the augmentation of its batch ``b`` from one seeded by ``(seed, e, b, rank)``.
* **Augmentation and AdapterBit.** ``augment`` (:mod:`seldflow.augment`, PSELDNets' augmix) edits each training
  batch in :meth:`Trainer.batches`, never validation; ``adapter`` (:mod:`seldflow.models.adapters`) builds HTSAT
  with adapters and trains only them, the biases and the head. Either enters the fingerprint only when set, so
  runs without them keep theirs.
* **Outputs.** ``best.pt`` and ``metrics.csv`` are written together when training ends; a run in progress keeps
  its history in the state folder, so a killed run never leaves complete-looking outputs. The same per-epoch rows
  go to TensorBoard event files in ``<state_dir>/tensorboard`` (:mod:`seldflow.tensorboard_log`).
* **Several processes.** ``processes > 1`` trains with DistributedDataParallel (see :mod:`seldflow.distributed`):
  each rank trains on a disjoint slice of every batch of the same global order, BatchNorm is synchronised, and the
  result equals single-process training up to float rounding (with dropout only statistically: every rank draws
  its own masks). Rank 0 alone validates and writes the state, metrics and checkpoint; every rank loads the state
  on resume. The number of processes is not part of the fingerprint (a run may resume with another count), and
  ``max_memory_mb`` is shared between the processes (each holds its own copy of the training clips).
* **Memory.** With ``keep_freed_memory`` (the default) the process keeps the memory it frees, so each step reuses
  the pages of the last instead of faulting in its large tensors anew (:mod:`seldflow.heap`: the demo's steps take
  about a third less time, its peak grows by about a quarter); the numbers are the same either way.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from seldflow import distributed
from seldflow.augment import Augmenter, build_augmenter
from seldflow.checkpoints import save_checkpoint
from seldflow.clipstore import ClipStore, epoch_batches, iterate_batches, locate, read_clips, split_validation
from seldflow.errors import ConfigError, InputError
from seldflow.feature_files import FeatureFile, check_consistent, open_feature_file
from seldflow.heap import keep_freed_memory as keep_heap
from seldflow.models import build_model, fit_input_norm, has_input_norm
from seldflow.models.adapters import check_adapter, freeze_for_adapterbit, trainable_summary
from seldflow.models.runtime import predict_features, resolve_device
from seldflow.shards import files_digest
from seldflow.tasks import Task, build_task
from seldflow.tensorboard_log import TrainingLog
from seldflow.training_state import (
    HISTORY_FILE,
    STATE_FILE,
    Progress,
    fingerprint,
    resume,
    rng_state,
    save_state,
    write_metrics,
)

# Columns of metrics.csv around the task's validation columns.
LEADING_COLUMNS = ("epoch", "train_loss", "val_loss")
TRAILING_COLUMNS = ("lr", "seconds")


def metrics_columns(task: Task) -> tuple[str, ...]:
    """The columns of a run's metrics.csv for ``task``."""
    return (*LEADING_COLUMNS, *task.validation_columns, *TRAILING_COLUMNS)


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
    """Held-out clips, loaded once: features, targets and native reference label rows keyed by stem."""

    names: list[str]
    features: np.ndarray
    targets: np.ndarray
    references: dict[str, np.ndarray]


def load_validation(files: Sequence[FeatureFile], indices: np.ndarray, task: Task) -> Validation | None:
    """Read the held-out clips once; ``None`` when nothing is held out."""
    if len(indices) == 0:
        return None
    features, targets = read_clips(files, indices, task)
    names = [""] * len(indices)
    references: dict[str, np.ndarray] = {}
    for number, positions, local in locate(files, np.asarray(indices, dtype=np.int64)):
        file = files[number]
        for position, clip in zip(positions, local, strict=True):
            names[position] = file.names[clip]
            references[names[position]] = file.clip_rows(clip)
    return Validation(names=names, features=features, targets=targets, references=references)


def validate(
    model: nn.Module,
    validation: Validation,
    *,
    task: Task,
    loss_fn: nn.Module,
    batch_size: int,
    device: torch.device,
) -> dict[str, float]:
    """Validation loss and the task's validation scores of the decoded predictions on the held-out clips."""
    outputs = predict_features(model, validation.features, batch_size, device)
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(outputs), batch_size):
            output = torch.from_numpy(outputs[start : start + batch_size]).to(device)
            target = torch.from_numpy(validation.targets[start : start + batch_size]).to(device)
            total += float(loss_fn(output, target)) * len(output)
    predictions = {name: task.decode(out) for name, out in zip(validation.names, outputs, strict=True)}
    return {"val_loss": total / len(outputs), **task.validation_scores(validation.references, predictions)}


# ---------------------------------------------------------------------------------------------------------------
# Stage
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Trainer:
    """The network with everything that updates it; the dict of stateful parts is what a resume restores."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | torch.optim.lr_scheduler.StepLR
    scaler: torch.amp.GradScaler
    loss_fn: nn.Module
    device: torch.device
    use_amp: bool
    ddp: nn.Module | None = None  # the DistributedDataParallel wrapper of ``net`` in a multi-process run
    rank: int = 0
    world_size: int = 1
    augmenter: Augmenter | None = None

    @property
    def epoch_schedule(self) -> bool:
        """Whether the learning rate follows the epoch count (StepLR) rather than the validation figure."""
        return isinstance(self.scheduler, torch.optim.lr_scheduler.StepLR)

    @classmethod
    def create(
        cls,
        model: str,
        channels: int,
        model_args: Mapping[str, Any],
        *,
        loss_fn: nn.Module,
        seed: int,
        lr: float,
        weight_decay: float,
        lr_factor: float,
        lr_patience: int,
        device: str,
        amp: bool,
        adapterbit: bool = False,
        lr_step_epochs: int | None = None,
    ) -> Trainer:
        """``adapterbit``: freeze all but the adapters, biases and head before the optimiser is built.
        ``lr_step_epochs``: multiply the rate by ``lr_factor`` every that many epochs (PSELDNets' StepLR) instead of
        on a validation plateau."""
        run_device = resolve_device(device)
        use_amp = amp and run_device.type == "cuda"
        if run_device.type == "cuda":  # reproducible kernels, as in the reference recipe
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        torch.manual_seed(seed)
        net = build_model(model, channels, **model_args).to(run_device)
        if adapterbit:
            freeze_for_adapterbit(net)
        trainable = [p for p in net.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)
        if lr_step_epochs:
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step_epochs, gamma=lr_factor)
        else:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=lr_factor, patience=lr_patience
            )
        scaler = torch.amp.GradScaler(run_device.type, enabled=use_amp)
        return cls(net, optimizer, scheduler, scaler, loss_fn.to(run_device), run_device, use_amp)

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

    def batches(
        self, store: ClipStore, batches: list[np.ndarray], num_workers: int, epoch: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's training batches, augmented when an augmenter is set: the one place a batch changes."""
        for number, (features, labels) in enumerate(iterate_batches(store, batches, num_workers)):
            if self.augmenter is not None:
                features, labels = self.augmenter(features, labels, epoch=epoch, batch=number, rank=self.rank)
            yield features, labels

    def train_epoch(
        self, store: ClipStore, batches: list[np.ndarray], num_workers: int, desc: str, epoch: int = 0
    ) -> float:
        """Mean training loss over one pass of the given batches (of epoch ``epoch``, which seeds augmentation)."""
        if self.ddp is not None:
            return self._train_epoch_distributed(store, batches, num_workers, desc, epoch)
        self.net.train()
        total, seen = 0.0, 0
        bar = tqdm(self.batches(store, batches, num_workers, epoch), total=len(batches), desc=desc, leave=False)
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
        self, store: ClipStore, batches: list[np.ndarray], num_workers: int, desc: str, epoch: int
    ) -> float:
        """This rank's slice of every global batch; the mean loss over all ranks' clips."""
        self.net.train()
        shards = [distributed.shard(batch, self.rank, self.world_size) for batch in batches]
        total, seen = 0.0, 0
        loader = self.batches(store, [part for part, _ in shards], num_workers, epoch)
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
    keep_freed_memory: bool = True,
    processes: int = 1,
    pretrained: str | None = None,
    pretrained_audioset: str | None = None,
    task: Mapping[str, Any] | None = None,
    method: str | None = None,
    loss_args: Mapping[str, float] | None = None,
    augment: Mapping[str, Any] | None = None,
    adapter: Mapping[str, Any] | None = None,
    reinit_head: bool = False,
    lr_step_epochs: int | None = None,
) -> None:
    """Train ``model`` on the labelled ``train_h5`` files; write the best ``checkpoint`` and ``metrics_csv``.

    AdamW with ``ReduceLROnPlateau`` (mode max) on the task's selection figure (or, with ``lr_step_epochs``, the
    rate times ``lr_factor`` every that many epochs, as PSELDNets' StepLR), optional early stopping after
    ``early_stop_patience`` epochs without improvement, mixed precision only on CUDA. The checkpoint format is
    :mod:`seldflow.checkpoints`. See the module docstring for selection and outputs, :mod:`seldflow.clipstore`
    for validation and the data path, :mod:`seldflow.training_state` for resumption.

    ``task`` is a task spec (:func:`seldflow.tasks.task_spec`; default: stereo DCASE2025 SELD with the label
    format of the feature files); ``method`` and ``loss_args`` override its method (``train.method``).

    ``processes > 1`` spawns that many DDP processes (gloo on CPU, nccl with one CUDA device per process) that run
    this function inside one process group; see :mod:`seldflow.distributed`.

    ``pretrained``: a PSELDNets checkpoint, or a seldflow one of the same model (a pretraining experiment's
    ``best.pt``), loaded into the fresh model before the first epoch (not on resume); see
    :func:`seldflow.models.transfer.load_pretrained`. A seldflow checkpoint of another class count is refused
    before training unless ``reinit_head`` (its head then starts fresh). The file's content digest enters the
    fingerprint, so a checkpoint replaced under the same path (a rerun pretraining) restarts a fine-tuning's state.
    ``pretrained_audioset``: likewise an AudioSet checkpoint (PANNs CNN14, HTS-AT, PaSST); see
    :func:`seldflow.models.audioset.load_audioset`.

    ``augment``: PSELDNets' batch augmentations (:class:`seldflow.augment.AugmentSettings`); ``adapter``: AdapterBit
    (:class:`seldflow.models.adapters.AdapterSettings`, HTSAT only). Both off when ``None``.
    """
    call = dict(locals())  # every argument, for the processes of a distributed run
    if processes > 1 and not distributed.is_active():
        _launch(call)
        return
    rank, world = distributed.rank(), distributed.world_size()
    if keep_freed_memory:  # each step reuses the last step's pages (seldflow.heap)
        keep_heap()
    if epochs < 1 or batch_size < 1:
        raise ConfigError("train", "epochs" if epochs < 1 else "batch_size", "must be at least 1")
    if pretrained and pretrained_audioset:  # the PSELDNets weights would overwrite most of the AudioSet ones
        raise ConfigError("train", "pretrained_audioset", "give pretrained or pretrained_audioset, not both")
    files = _open_inputs(train_h5)
    run_task = _resolve_task(task, files[0], method=method, loss_args=loss_args)
    adapter_settings = check_adapter(model, adapter)
    augmenter = build_augmenter(
        augment, method=run_task.label_augmentation(), feature_kind=files[0].kind,
        feature_shape=files[0].feature_shape, label_frames=files[0].label_frames, seed=seed,
    )  # fmt: skip
    train_ids, val_ids = split_validation([n for f in files for n in f.names], validation_fraction, seed)
    channels, _frames, bins = files[0].feature_shape
    # The model is sized for the features it is trained on and emits the task's outputs.
    resolved_args = {"n_mels": bins, **run_task.model_args(), **model_args}
    if adapter_settings is not None:
        resolved_args.update(adapter_settings.model_args())
    arguments = {
        "seed": seed, "model": model, "model_args": resolved_args, "batch_size": batch_size, "lr": lr,
        "weight_decay": weight_decay, "validation_fraction": validation_fraction, "lr_factor": lr_factor,
        "lr_patience": lr_patience, "early_stop_patience": early_stop_patience, "amp": amp,
    }  # fmt: skip
    if pretrained:  # only when set, so fingerprints of runs without it are unchanged
        arguments["pretrained"] = str(pretrained)
        arguments["pretrained_digest"] = files_digest([pretrained])
    if reinit_head:
        arguments["reinit_head"] = True
    if lr_step_epochs:
        arguments["lr_step_epochs"] = lr_step_epochs
    if pretrained_audioset:
        arguments["pretrained_audioset"] = str(pretrained_audioset)
    if augmenter is not None:
        arguments["augment"] = augmenter.settings.spec()
    if adapter_settings is not None:
        arguments["adapter"] = adapter_settings.spec()
    arguments["task"] = run_task.spec()
    columns = metrics_columns(run_task)
    run_fingerprint = fingerprint(arguments, files)
    trainer = Trainer.create(
        model, channels, resolved_args, loss_fn=run_task.loss(), seed=seed, lr=lr, weight_decay=weight_decay,
        lr_factor=lr_factor, lr_patience=lr_patience, device=device, amp=amp,
        adapterbit=adapter_settings is not None, lr_step_epochs=lr_step_epochs,
    )  # fmt: skip
    trainer.augmenter = augmenter
    state_path = Path(state_dir) / STATE_FILE
    resumed = resume(state_path, run_fingerprint, epochs, trainer.stateful(), seed=seed, rank=rank, world_size=world)
    if resumed is None and rank > 0:  # same initial weights as rank 0, but dropout streams of its own
        distributed.seed_rank(seed, rank, 0)
    progress = resumed or Progress()
    if pretrained and resumed is None:  # initialises a fresh run only; a resumed one has its own weights
        from seldflow.models.transfer import load_pretrained

        n_classes = int(run_task.spec().get("n_classes") or 0)
        report = load_pretrained(
            trainer.net, Path(pretrained), model_name=model, n_classes=n_classes, reinit_head=reinit_head
        )
        if rank == 0:
            tqdm.write(report.summary(), file=sys.stderr)
    if pretrained_audioset and resumed is None:
        from seldflow.models.audioset import load_audioset

        report = load_audioset(trainer.net, Path(pretrained_audioset))
        if rank == 0:
            tqdm.write(report.summary(), file=sys.stderr)
    if adapter_settings is not None and rank == 0:
        counts = ", ".join(f"{key} {value:,}" for key, value in trainable_summary(trainer.net).items())
        tqdm.write(f"AdapterBit parameters: {counts}", file=sys.stderr)
    store = ClipStore(files, train_ids, run_task, max_memory_mb / world)
    if progress.epoch == 0 and has_input_norm(trainer.net):  # a resumed run restores them with the model state
        fit_input_norm(trainer.net, *store.feature_statistics())
    if world > 1:
        trainer.distribute()
    validation = load_validation(files, val_ids, run_task) if rank == 0 else None
    mode = "in memory" if store.in_memory else "streamed from HDF5"
    held_out = 0 if validation is None else len(validation.names)
    if rank == 0:
        ranks = f" in {world} processes" if world > 1 else ""
        tqdm.write(f"training on {len(store)} clips ({mode}){ranks}, validating on {held_out}", file=sys.stderr)

    log = TrainingLog(state_dir, first_epoch=progress.epoch + 1) if rank == 0 else None
    try:
        for epoch in range(progress.epoch + 1, epochs + 1):
            if 0 < early_stop_patience <= progress.stale_epochs:
                tqdm.write(f"early stop: no improvement in {progress.stale_epochs} epochs", file=sys.stderr)
                break
            started = time.perf_counter()
            current_lr = trainer.optimizer.param_groups[0]["lr"]
            batches = epoch_batches(len(store), batch_size, seed, epoch)
            train_loss = _train_epoch(trainer, store, batches, num_workers, epoch=epoch, epochs=epochs)
            scores, score = _evaluate(trainer, run_task, validation, batch_size, epoch, validating=len(val_ids) > 0)
            if trainer.epoch_schedule:
                trainer.scheduler.step()
            row = {"epoch": epoch, "train_loss": train_loss, **scores, "lr": current_lr}
            row["seconds"] = round(time.perf_counter() - started, 3)
            progress.history.append(row)
            progress.epoch = epoch
            if progress.record(score) and rank == 0:
                progress.best = _checkpoint_payload(
                    trainer.net, epoch, scores, model, resolved_args, files[0], run_task
                )
            rng_ranks = distributed.gather_objects(rng_state()) if world > 1 else None
            if log is not None:  # before the state: a resumed run hides what it logged after its last save
                log.log_epoch(row)
            if rank == 0:
                save_state(state_path, run_fingerprint, progress, trainer.stateful(), rng_ranks)
                write_metrics(Path(state_dir) / HISTORY_FILE, progress.history, columns)
                tqdm.write(_summary(row), file=sys.stderr)
    finally:
        store.close()
        if log is not None:
            log.close()
    if rank == 0:
        _write_outputs(Path(checkpoint), Path(metrics_csv), progress, state_path, columns)


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
    return trainer.train_epoch(store, batches, num_workers, desc=f"epoch {epoch}/{epochs}", epoch=epoch)


def _evaluate(
    trainer: Trainer,
    task: Task,
    validation: Validation | None,
    batch_size: int,
    epoch: int,
    *,
    validating: bool = True,
) -> tuple[dict[str, float], float]:
    """Validation scores and the selection score; steps the plateau scheduler on the selection score.

    In a distributed run only rank 0 holds ``validation``; the other ranks receive its scores, so every rank's
    scheduler and early-stopping count follow the same values.
    """
    if not validating or (validation is None and trainer.world_size == 1):
        columns = ("val_loss", *task.validation_columns)
        return dict.fromkeys(columns, math.nan), float(epoch)  # without validation the latest is best
    scores = None
    if validation is not None:
        scores = validate(
            trainer.net, validation, task=task, loss_fn=trainer.loss_fn, batch_size=batch_size, device=trainer.device
        )
    scores = distributed.broadcast_object(scores)
    score = task.selection_score(scores)
    if not trainer.epoch_schedule:
        trainer.scheduler.step(score)
    return scores, score


def _write_outputs(
    checkpoint: Path, metrics_csv: Path, progress: Progress, state_path: Path, columns: Sequence[str]
) -> None:
    """The declared outputs, together, once training has ended (also when a resumed run had nothing left)."""
    if progress.best is None:  # unreachable unless the saved state was edited by hand
        raise InputError(state_path, "training state has no best model")
    save_checkpoint(checkpoint, progress.best)
    write_metrics(metrics_csv, progress.history, columns)


def _resolve_task(
    spec: Mapping[str, Any] | None,
    file: FeatureFile,
    *,
    method: str | None,
    loss_args: Mapping[str, float] | None,
) -> Task:
    """The task to train: the spec given, else one for the feature files' label format; method overrides applied."""
    resolved = dict(spec or {"name": "seld", "label_format": file.label_format})
    if method is not None:
        resolved["method"] = method
    if loss_args:
        resolved["loss_args"] = dict(loss_args)
    task = build_task(resolved)
    stored = resolved.get("label_format")
    if stored is not None and stored != file.label_format:
        raise InputError(
            file.path,
            f"labels are in the {file.label_format!r} format but the task expects {stored!r}",
            field="label_format",
        )
    return task


def _checkpoint_payload(
    net: nn.Module,
    epoch: int,
    scores: Mapping[str, float],
    model_name: str,
    model_args: Mapping[str, Any],
    file: FeatureFile,
    task: Task,
) -> dict[str, Any]:
    """What inference needs to rebuild the model and its task, as tensors and plain types only."""
    return {
        "model_state": {key: value.detach().cpu().clone() for key, value in net.state_dict().items()},
        "model_name": model_name,
        "model_args": dict(model_args),
        "in_channels": file.feature_shape[0],
        "feature_kind": file.kind,
        "feature_config": file.config,
        "task": task.spec(),
        "epoch": epoch,
        "val_metrics": dict(scores),
    }


def _summary(row: Mapping[str, float]) -> str:
    """One log line per epoch: every logged figure, in metrics.csv order."""
    figures = ", ".join(
        f"{key.replace('_', ' ')} {value:.4g}" for key, value in row.items() if key not in ("epoch", "seconds")
    )
    return f"epoch {row['epoch']}: {figures}, {row['seconds']:.1f} s"
