"""DOAnet training stage: the epoch loop over the training folds, selection on the validation fold's LE.

As the reference (``train_doanet.py``): Adam, batches of sequences of ``sequence_frames`` label frames (50 = 5 s,
250 feature frames) cut from the training recordings, one optimisation step per batch with the loss of the
experiment (:mod:`seldflow.doanet.loss`; the frozen Hnet for the dMOT losses), and after every epoch the
class-agnostic tracking scores of the validation recordings (:mod:`seldflow.metrics.doa_mot`, the official
computation), the epoch with the lowest validation LE kept (``select_on``: another of those scores may select;
with a CPU budget the lowest LE often falls on an epoch that detects few sources, whose few matches are easy).

Differences, on purpose: the features are standardised per channel and mel band with statistics of the training
recordings only (the reference fits them on all development files); sequences are cut per recording (the tail
shorter than a sequence is dropped) and shuffled per epoch from ``(seed, epoch)``; validation reads every
recording whole and turns the outputs into prediction rows exactly as inference does
(:mod:`seldflow.doanet.outputs`), so the selected LE is the one the test CSVs will be scored with.

After every epoch the state is saved (:mod:`seldflow.training_state`): a killed run resumes exactly where it
stopped, and the per-epoch rows are logged for TensorBoard (:mod:`seldflow.tensorboard_log`). ``best.pt`` and
``metrics.csv`` appear together when training ends.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from seldflow.checkpoints import save_checkpoint
from seldflow.doanet.hnet import load_frozen_hnet
from seldflow.doanet.labels import doa_targets
from seldflow.doanet.loss import DOAnetLossConfig, LossValue, doanet_loss
from seldflow.doanet.model import DOANET_KIND, build_doanet
from seldflow.doanet.outputs import activity_rule, recording_rows
from seldflow.doanet.store import FeatureSplit, Scaler, fit_scaler, read_split
from seldflow.errors import ConfigError, InputError
from seldflow.metrics.doa_mot import compute_metrics
from seldflow.models.runtime import resolve_device
from seldflow.tensorboard_log import TrainingLog
from seldflow.training_state import HISTORY_FILE, STATE_FILE, Progress, fingerprint, resume, save_state, write_metrics

# The scores of the validation fold logged per epoch (doa-mot keys), each with whether lower is better; any of
# them may select the kept epoch (the reference: LE).
VALIDATION_SCORES: dict[str, bool] = {"LE": True, "MOTA": False, "IDS": True, "LR": False, "LP": False, "LF": False}
REFERENCE_SELECTION = "LE"
# Learning-rate schedules over the epochs: the reference's constant rate, or a cosine decay to COSINE_FLOOR of it.
LR_SCHEDULES = ("constant", "cosine")
COSINE_FLOOR = 0.05
METRICS_COLUMNS = (
    "epoch",
    "train_loss",
    "train_dmotp",
    "train_dmota",
    "train_activity",
    *(f"val_{score}" for score in VALIDATION_SCORES),
    "lr",
    "seconds",
)


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation of one experiment (reference: Adam 1e-3, batch 64, sequences of 50 label frames)."""

    epochs: int
    batch_size: int
    lr: float
    sequence_frames: int = 50
    select_on: str = REFERENCE_SELECTION
    grad_clip: float | None = None
    lr_schedule: str = "constant"
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "sequence_frames"):
            if getattr(self, name) < 1:
                raise ConfigError("config", f"doanet.train.{name}", f"must be at least 1, got {getattr(self, name)}")
        if self.select_on not in VALIDATION_SCORES:
            known = ", ".join(VALIDATION_SCORES)
            raise ConfigError("config", "doanet.train.select_on", f"unknown score {self.select_on!r} ({known})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError("config", "doanet.train.lr", f"must be positive, got {self.lr}")
        if self.lr_schedule not in LR_SCHEDULES:
            known = ", ".join(LR_SCHEDULES)
            raise ConfigError("config", "doanet.train.lr_schedule", f"unknown schedule {self.lr_schedule!r} ({known})")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError("config", "doanet.train.grad_clip", f"must be positive or null, got {self.grad_clip}")


# --------------------------------------------------------------------------------------------------------------
# One optimisation step
# --------------------------------------------------------------------------------------------------------------


def check_network_fits_loss(model: nn.Module, config: DOAnetLossConfig) -> None:
    """The activity-branch loss needs the activity head, and the other losses leave it untrained: refuse both
    mismatches before training rather than fail (or waste parameters) later."""
    has_head = getattr(model, "activity_head", None) is not None
    if config.activity != has_head:
        need = "with" if config.activity else "without"
        raise ValueError(f"the {config.mode} loss (activity={config.activity}) needs a network {need} activity head")


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    reference_doa: torch.Tensor,
    reference_activity: torch.Tensor,
    config: DOAnetLossConfig,
    hnet: nn.Module | None = None,
    grad_clip: float | None = None,
) -> LossValue:
    """Forward ``features (B, C, T, mel)``, loss against the label-frame targets, backward, one optimiser step
    (the gradient's norm clipped to ``grad_clip`` first, when given; the reference does not clip)."""
    model.train()
    optimizer.zero_grad()
    value = doanet_loss(model(features), reference_doa, reference_activity, config, hnet)
    value.loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return value


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sequences:
    """Training sequences: standardised features ``(n, C, T, mel)`` and targets ``(n, frames, n_max, 3)``,
    ``(n, frames, n_max)``."""

    features: torch.Tensor
    doa: torch.Tensor
    activity: torch.Tensor

    def __len__(self) -> int:
        return len(self.features)


def cut_sequences(
    splits: Sequence[FeatureSplit], scaler: Scaler, sequence_frames: int, n_max: int, mode: str
) -> Sequences:
    """Every whole sequence of ``sequence_frames`` label frames of every recording, with its targets."""
    features, doas, activities = [], [], []
    for split in splits:
        per_label = split.frames_per_label
        for stem, values in split.features.items():
            n_frames = values.shape[1] // per_label
            targets = doa_targets(split.labels[stem], n_frames, n_max, mode, path=stem)
            standardised = scaler.apply(values)
            for start in range(0, n_frames - sequence_frames + 1, sequence_frames):
                end = start + sequence_frames
                features.append(standardised[:, start * per_label : end * per_label])
                doas.append(targets.doa[start:end])
                activities.append(targets.activity[start:end])
    if not features:
        raise InputError("training features", f"no recording holds a whole sequence of {sequence_frames} label frames")
    return Sequences(*(torch.from_numpy(np.stack(arrays)) for arrays in (features, doas, activities)))


def epoch_lr(settings: TrainSettings, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based): constant, or cosine from ``lr`` at the first epoch down to
    ``COSINE_FLOOR · lr`` at the last."""
    if settings.lr_schedule == "constant" or settings.epochs == 1:
        return settings.lr
    progress = epoch / (settings.epochs - 1)
    return settings.lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sequence order of one epoch: a permutation drawn from ``(seed, epoch)`` alone (resumable)."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch])).permutation(n)


# --------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------


def validation_scores(
    model: nn.Module,
    split: FeatureSplit,
    scaler: Scaler,
    rule: str,
    infer: Mapping[str, Any],
    device: torch.device,
) -> dict[str, float]:
    """The doa-mot scores of the validation recordings, read as inference reads them."""
    predictions = {
        stem: recording_rows(model, scaler.apply(features), rule, infer, device)
        for stem, features in split.features.items()
    }
    report = compute_metrics(split.labels, predictions)
    return {score: float(report[score]) for score in VALIDATION_SCORES}


def selection_value(scores: Mapping[str, float], score: str = REFERENCE_SELECTION) -> float:
    """Higher is better: the validation ``score``, negated where lower is better; undefined (an LE without any
    matched frame) is the worst."""
    value = scores[score]
    if not math.isfinite(value):
        return -math.inf
    return -value if VALIDATION_SCORES[score] else value


# --------------------------------------------------------------------------------------------------------------
# Loop
# --------------------------------------------------------------------------------------------------------------


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Sequences,
    settings: TrainSettings,
    loss: DOAnetLossConfig,
    hnet: nn.Module | None,
    epoch: int,
    device: torch.device,
) -> dict[str, float]:
    """One pass over the shuffled sequences (the incomplete last batch kept); mean loss terms per sequence."""
    order = epoch_order(len(data), settings.seed, epoch)
    sums = np.zeros(4)
    for start in tqdm(range(0, len(order), settings.batch_size), desc=f"epoch {epoch + 1}", leave=False):
        index = torch.from_numpy(order[start : start + settings.batch_size])
        batch = (data.features[index].to(device), data.doa[index].to(device), data.activity[index].to(device))
        value = train_step(model, optimizer, *batch, loss, hnet, settings.grad_clip)
        sums += len(index) * np.array([value.loss.item(), value.dmotp, value.dmota, value.activity])
    means = sums / len(order)
    return dict(zip(("train_loss", "train_dmotp", "train_dmota", "train_activity"), means.tolist(), strict=True))


def train_doanet(
    train: Sequence[FeatureSplit],
    validation: FeatureSplit,
    *,
    model_name: str,
    model_args: Mapping[str, Any],
    loss: DOAnetLossConfig,
    settings: TrainSettings,
    infer: Mapping[str, Any],
    hnet: nn.Module | None,
    checkpoint_out: str | Path,
    metrics_out: str | Path,
    state_dir: str | Path,
    rule: str | None = None,
    extras: Mapping[str, Any] | None = None,
    inputs_signature: str = "",
) -> dict[str, Any]:
    """Train, select on the validation score of ``settings.select_on``, write ``best.pt`` (with the scaler, the
    activity ``rule`` that reads the network, :func:`~seldflow.doanet.outputs.activity_rule`, and ``extras``) and
    ``metrics.csv``.

    Returns the selected epoch's row. ``inputs_signature`` identifies the data and the Hnet, so a state saved on
    other inputs is not resumed.
    """
    state_dir = Path(state_dir)
    torch.manual_seed(settings.seed)
    device = resolve_device(settings.device)
    model = build_doanet(model_name, **model_args).to(device)
    check_network_fits_loss(model, loss)
    if loss.uses_hnet and hnet is None:
        raise ValueError("the dMOT losses need the frozen Hnet")
    hnet = hnet.to(device) if hnet is not None else None
    scaler = fit_scaler(train)
    data = cut_sequences(train, scaler, settings.sequence_frames, model.n_max, "hnet" if loss.uses_hnet else "mse")
    rule = activity_rule(loss, rule)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    arguments = {
        "model": model_name,
        "model_args": dict(model_args),
        "loss": asdict(loss),
        # A constant rate lets a finished run be extended to more epochs; a schedule depends on their number.
        "settings": {
            k: v
            for k, v in asdict(settings).items()
            if k != "device" and (k != "epochs" or settings.lr_schedule == "constant")
        },
        "infer": dict(infer),
        "rule": rule,
        "inputs": inputs_signature,
    }
    modules = {"model": model, "optimizer": optimizer}
    run_fingerprint = fingerprint(arguments, [])
    progress = resume(state_dir / STATE_FILE, run_fingerprint, settings.epochs, modules, seed=settings.seed)
    progress = progress or Progress()
    log = TrainingLog(state_dir, progress.epoch)
    try:
        for epoch in range(progress.epoch, settings.epochs):
            started = time.monotonic()
            lr = epoch_lr(settings, epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            row: dict[str, float] = {"epoch": epoch + 1}
            row |= _train_epoch(model, optimizer, data, settings, loss, hnet, epoch, device)
            scores = validation_scores(model, validation, scaler, rule, infer, device)
            row |= {f"val_{score}": value for score, value in scores.items()}
            row |= {"lr": lr, "seconds": time.monotonic() - started}
            progress.epoch = epoch + 1
            progress.history.append(row)
            if progress.record(selection_value(scores, settings.select_on)):
                progress.best = {"row": row, "model_state": _cpu_state(model)}
            tqdm.write(
                f"epoch {epoch + 1}: loss {row['train_loss']:.4f}, validation LE {scores['LE']:.2f}°, "
                f"MOTA {scores['MOTA']:.1f} %"
            )
            log.log_epoch(row)
            write_metrics(state_dir / HISTORY_FILE, progress.history, METRICS_COLUMNS)
            save_state(state_dir / STATE_FILE, run_fingerprint, progress, modules)
    finally:
        log.close()
    assert progress.best is not None  # at least one epoch ran (epochs >= 1)
    best = progress.best
    save_checkpoint(
        Path(checkpoint_out),
        {
            "kind": DOANET_KIND,
            "model_name": model_name,
            "model_args": dict(model_args),
            "model_state": best["model_state"],
            "scaler_mean": torch.from_numpy(scaler.mean),
            "scaler_std": torch.from_numpy(scaler.std),
            "loss": asdict(loss) | {"branch_weights": list(loss.branch_weights)},
            "activity_rule": rule,
            "frames_per_label": validation.frames_per_label,
            "epoch": int(best["row"]["epoch"]),
            "val_metrics": {key: best["row"][key] for key in best["row"] if key.startswith("val_")},
            **dict(extras or {}),
        },
    )
    write_metrics(Path(metrics_out), progress.history, METRICS_COLUMNS)
    return dict(best["row"])


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (the training fingerprint's view of an input)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------------------
# Workflow entry (rule doanet_train)
# --------------------------------------------------------------------------------------------------------------


def run_training(
    *,
    train_features: Sequence[str | Path],
    validation_features: str | Path,
    hnet: str | Path | None,
    experiment: Mapping[str, Any],
    model_args: Mapping[str, Any],
    feature_settings: Mapping[str, Any],
    infer: Mapping[str, Any],
    seed: int,
    checkpoint_out: str | Path,
    metrics_out: str | Path,
    state_dir: str | Path,
) -> dict[str, Any]:
    """Train one experiment (``experiment``: its merged ``doanet.train`` settings) from the feature files."""
    from seldflow.doanet.settings import loss_config

    loss = loss_config(experiment)
    settings = TrainSettings(
        epochs=experiment["epochs"],
        batch_size=experiment["batch_size"],
        lr=experiment["lr"],
        sequence_frames=experiment["sequence_frames"],
        select_on=experiment["select_on"],
        grad_clip=experiment.get("grad_clip"),
        lr_schedule=experiment.get("lr_schedule", "constant"),
        seed=seed,
        device=experiment["device"],
    )
    frozen = load_frozen_hnet(hnet, int(model_args["n_max"])) if hnet else None
    inputs = [*train_features, validation_features, *([hnet] if hnet else [])]
    return train_doanet(
        [read_split(path) for path in train_features],
        read_split(validation_features),
        model_name=experiment["model"],
        model_args=model_args,
        loss=loss,
        settings=settings,
        infer=infer,
        hnet=frozen,
        checkpoint_out=checkpoint_out,
        metrics_out=metrics_out,
        state_dir=state_dir,
        rule=experiment.get("activity_rule"),
        extras={"feature_kind": experiment["features"], "feature_settings": dict(feature_settings)},
        inputs_signature=",".join(file_digest(path) for path in inputs),
    )
