"""The Hungarian network (Hnet): a distance matrix in, a soft assignment out; its loss, selection score and training.

Architecture (Adavanne et al., WASPAA 2021): the ``n_max × n_max`` distance matrix is read as a sequence of
``n_max`` rows of ``n_max`` features; a one-layer GRU (128) → single-head self-attention whose query, key and
value are bias-free 1×1 convolutions (128 → 128) with ``softmax(QᵀK)`` *unscaled* → tanh → a linear layer
(128 → ``n_max``) per row gives the assignment logits. Two more outputs, the row-wise and the column-wise maxima of
those logits, are trained to say whether a row (column) is associated at all. For ``n_max = 2``: GRU 50,688 +
attention 49,152 + output 258 = 100,098 parameters.

Loss: three ``BCEWithLogits`` sums, 1:1:1 by default: logits vs the one-hot assignment, row maxima vs row sums,
column maxima vs column sums. Selection: the weighted F1 of ``sigmoid(logits) > 0.5`` on held-out examples, every
cell weighted by how often it is an association in the training set.

DOAnet calls Hnet on ``cdist(predictions, references)`` (rows predictions) although it was trained on
``cdist(references, predictions)``; the training distribution is symmetric in the two (same counts, same padding,
rows or columns permuted), so the transpose is seen as often.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seldflow.checkpoints import load_checkpoint, save_checkpoint
from seldflow.doanet.hnet_data import HnetData
from seldflow.errors import InputError
from seldflow.models import count_parameters

HNET_CHECKPOINT_KEYS = ("kind", "model_state", "model_args")
HNET_KIND = "hnet"
# Parameters of the reference Hnet (n_max = 2): GRU 50,688 + attention 49,152 + output layer 258.
REFERENCE_HNET_PARAMETERS = 100_098
# Threshold on sigmoid(logit) above which a cell counts as an association (selection score and DOAnet's gate).
ASSOCIATION_THRESHOLD = 0.5


class HnetOutput(NamedTuple):
    """Logits of one batch: ``assignment (B, n_max²)`` (row-major), ``rows (B, n_max)``, ``columns (B, n_max)``."""

    assignment: torch.Tensor
    rows: torch.Tensor
    columns: torch.Tensor


class HungarianNet(nn.Module):
    """Hnet: ``(B, n_max, n_max)`` distances → :class:`HnetOutput` logits."""

    def __init__(self, n_max: int = 2, hidden: int = 128) -> None:
        super().__init__()
        if n_max < 1 or hidden < 1:
            raise ValueError(f"n_max and hidden must be positive, got {n_max} and {hidden}")
        self.n_max = n_max
        self.gru = nn.GRU(n_max, hidden, num_layers=1, batch_first=True)
        self.query = nn.Conv1d(hidden, hidden, kernel_size=1, bias=False)
        self.key = nn.Conv1d(hidden, hidden, kernel_size=1, bias=False)
        self.value = nn.Conv1d(hidden, hidden, kernel_size=1, bias=False)
        self.out = nn.Linear(hidden, n_max)

    def assignment_logits(self, distances: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_max, n_max)`` of the assignment of ``distances (B, n_max, n_max)``."""
        if distances.shape[-2:] != (self.n_max, self.n_max):
            raise ValueError(f"expected (B, {self.n_max}, {self.n_max}) distances, got {tuple(distances.shape)}")
        hidden, _ = self.gru(distances)  # (B, rows, hidden)
        channels = hidden.transpose(1, 2)  # (B, hidden, rows): the 1×1 convolutions act per row
        query, key, value = self.query(channels), self.key(channels), self.value(channels)
        weights = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # (B, rows, rows), no 1/sqrt(d) scaling
        attended = weights @ value.transpose(1, 2)  # (B, rows, hidden)
        return self.out(torch.tanh(attended))

    def forward(self, distances: torch.Tensor) -> HnetOutput:
        logits = self.assignment_logits(distances)
        return HnetOutput(logits.flatten(1), logits.amax(dim=-1), logits.amax(dim=-2))


def hnet_parameter_breakdown(n_max: int = 2, hidden: int = 128) -> dict[str, int]:
    """Trainable parameters per part of Hnet: ``gru``, ``attention`` (query, key, value) and ``output``."""
    model = HungarianNet(n_max, hidden)
    parts = {"gru": [model.gru], "attention": [model.query, model.key, model.value], "output": [model.out]}
    return {part: sum(count_parameters(module) for module in modules) for part, modules in parts.items()}


def hnet_targets(assignments: torch.Tensor) -> HnetOutput:
    """Targets of the three outputs: the flattened 0/1 assignment, its row sums and its column sums."""
    return HnetOutput(assignments.flatten(1), assignments.sum(-1), assignments.sum(-2))


def hnet_loss(
    output: HnetOutput, assignments: torch.Tensor, weights: Sequence[float] = (1.0, 1.0, 1.0)
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Weighted sum of the three ``BCEWithLogits`` sums (not means, as in the recipe), and the three terms."""
    terms = tuple(
        F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
        for logits, target in zip(output, hnet_targets(assignments), strict=True)
    )
    total = sum(weight * term for weight, term in zip(weights, terms, strict=True))
    return total, terms  # type: ignore[return-value]


def cell_weights(assignments: np.ndarray) -> np.ndarray:
    """Per cell of the assignment matrix, the fraction of examples in which it is an association ``(n_max²,)``."""
    return assignments.reshape(len(assignments), -1).mean(axis=0)


def weighted_f1(reference: np.ndarray, predicted: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Support-weighted mean over the labels present of the per-label F1 of 0/1 arrays (sample weights allowed).

    The figure ``sklearn.metrics.f1_score(average="weighted", zero_division=1)`` gives; written here because
    scikit-learn is no dependency of the project. Per label ``c``: F1 = 2·TP/(2·TP + FP + FN) with weighted
    counts (1 when the denominator is 0), weighted by the label's weighted support; labels are those occurring in
    either array; no support at all gives 1.
    """
    reference = np.asarray(reference).reshape(-1).astype(bool)
    predicted = np.asarray(predicted).reshape(-1).astype(bool)
    weight = np.ones(len(reference)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if not (len(reference) == len(predicted) == len(weight)):
        raise ValueError("reference, predicted and sample_weight must have the same length")
    scores, supports = [], []
    for label in np.unique(np.concatenate([reference, predicted])):
        true, pred = reference == label, predicted == label
        tp, fp, fn = weight[true & pred].sum(), weight[~true & pred].sum(), weight[true & ~pred].sum()
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator > 0 else 1.0)
        supports.append(weight[true].sum())
    total = float(np.sum(supports))
    return float(np.dot(scores, supports) / total) if total > 0 else 1.0


def predict_assignments(model: HungarianNet, distances: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """0/1 assignments ``(n, n_max, n_max)`` Hnet gives for ``distances``: ``sigmoid(logit) > 0.5``."""
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(distances), batch_size):
            batch = torch.as_tensor(distances[start : start + batch_size], dtype=torch.float32)
            chunks.append((torch.sigmoid(model.assignment_logits(batch)) > ASSOCIATION_THRESHOLD).numpy())
    return np.concatenate(chunks).astype(np.float32)


def hnet_f1(model: HungarianNet, data: HnetData, weights: np.ndarray) -> float:
    """Weighted F1 of Hnet on ``data``, each cell weighted by ``weights`` (:func:`cell_weights` of training)."""
    predicted = predict_assignments(model, data.distances)
    return weighted_f1(data.assignments, predicted, np.tile(weights, len(data)))


@dataclass(frozen=True)
class HnetTrainSettings:
    """Hnet training (reference: Adam at its default 1e-3, batch 256, up to 1000 epochs, 1:1:1 loss).

    ``stop_f1``: end training after the first epoch whose held-out weighted F1 reaches it (``None``: run all
    epochs, as the reference); a time budget for small demos, where F1 jumps late and then levels off.
    """

    epochs: int
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    hidden: int = 128
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    stop_f1: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss_weights", tuple(self.loss_weights))  # a YAML list becomes a tuple
        if self.epochs < 1 or self.batch_size < 1 or self.hidden < 1:
            raise ValueError("epochs, batch_size and hidden must be positive")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be positive, got {self.lr}")
        if len(self.loss_weights) != 3:
            raise ValueError(f"loss_weights needs 3 entries, got {len(self.loss_weights)}")


@dataclass
class HnetTrainResult:
    """The selected weights, their epoch (1-based) and held-out weighted F1, and per-epoch history rows."""

    model_state: dict[str, torch.Tensor]
    model_args: dict[str, int]
    epoch: int
    weighted_f1: float
    history: list[dict[str, float]] = field(default_factory=list)


def train_hnet(train: HnetData, test: HnetData, settings: HnetTrainSettings) -> HnetTrainResult:
    """Train Hnet on ``train``, keep the epoch with the best weighted F1 on ``test``; deterministic given the seed.

    As in the recipe: shuffled batches with the incomplete last batch dropped, the loss summed over a batch, F1
    cell weights from the training assignments, a later epoch selected only when strictly better. One difference:
    F1 is computed over the whole held-out set, where the reference averages it over full batches of 256 (and
    drops the rest).
    """
    if train.n_max != test.n_max:
        raise ValueError(f"training n_max {train.n_max} differs from test n_max {test.n_max}")
    if len(train) < settings.batch_size:
        raise ValueError(f"{len(train)} training examples are fewer than one batch of {settings.batch_size}")
    torch.manual_seed(settings.seed)
    model_args = {"n_max": train.n_max, "hidden": settings.hidden}
    model = HungarianNet(**model_args)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    shuffle = torch.Generator().manual_seed(settings.seed)
    distances = torch.as_tensor(train.distances, dtype=torch.float32)
    assignments = torch.as_tensor(train.assignments, dtype=torch.float32)
    weights = cell_weights(train.assignments)
    best: HnetTrainResult | None = None
    history: list[dict[str, float]] = []
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=shuffle)
        n_batches = len(train) // settings.batch_size
        epoch_loss = 0.0
        for batch in order[: n_batches * settings.batch_size].view(n_batches, settings.batch_size):
            optimizer.zero_grad()
            loss, _ = hnet_loss(model(distances[batch]), assignments[batch], settings.loss_weights)
            loss.backward()
            optimizer.step()
            epoch_loss += loss.item()
        score = hnet_f1(model, test, weights)
        history.append({"epoch": epoch, "train_loss": epoch_loss / (n_batches * settings.batch_size), "f1": score})
        if best is None or score > best.weighted_f1:
            state = {key: value.detach().clone() for key, value in model.state_dict().items()}
            best = HnetTrainResult(state, model_args, epoch, score)
        if settings.stop_f1 is not None and score >= settings.stop_f1:
            break
    assert best is not None  # epochs >= 1
    best.history = history
    return best


def save_hnet(path: str | Path, result: HnetTrainResult, config: dict[str, Any] | None = None) -> None:
    """Write the selected Hnet with its arguments, epoch, F1 and the ``config`` that produced it."""
    payload = {
        "kind": HNET_KIND,
        "model_state": result.model_state,
        "model_args": dict(result.model_args),
        "epoch": result.epoch,
        "weighted_f1": result.weighted_f1,
        "config": dict(config or {}),
    }
    save_checkpoint(Path(path), payload)


def load_frozen_hnet(path: str | Path, n_max: int) -> HungarianNet:
    """The Hnet of ``path`` in evaluation mode with every parameter frozen, checked to associate ``n_max`` DOAs."""
    checkpoint = load_checkpoint(Path(path), HNET_CHECKPOINT_KEYS)
    if checkpoint["kind"] != HNET_KIND:
        raise InputError(path, f"holds a {checkpoint['kind']!r}, not an Hnet", field="kind")
    args = checkpoint["model_args"]
    if args.get("n_max") != n_max:
        raise InputError(path, f"Hnet was trained for n_max = {args.get('n_max')}, need {n_max}", field="n_max")
    try:
        model = HungarianNet(**args)
        model.load_state_dict(checkpoint["model_state"])
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(path, f"weights do not fit an Hnet ({exc})", field="model_state") from None
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval()


def settings_dict(settings: HnetTrainSettings) -> dict[str, Any]:
    """Plain-typed settings, for the checkpoint's ``config``."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(settings).items()}


# --------------------------------------------------------------------------------------------------------------
# The Hnet stage of the workflow (rule doanet_hnet)
# --------------------------------------------------------------------------------------------------------------

HISTORY_COLUMNS = ("epoch", "train_loss", "f1")
# Keys of ``doanet.hnet`` that size the generated data; the rest are training settings or the given weights.
DATA_KEYS = ("n_max", "resolutions", "counts", "test_counts")
NOT_TRAINING_KEYS = (*DATA_KEYS, "weights")


def run_hnet(config: dict[str, Any], seed: int, checkpoint_out: str | Path, metrics_out: str | Path) -> HnetTrainResult:
    """Generate Hnet's training and held-out data (``config``: the ``doanet.hnet`` section), train it, write the
    frozen checkpoint (with that section) and the per-epoch history.

    The training and held-out sets are drawn from two seeds derived from ``seed``, so they never share examples.
    """
    from seldflow.doanet.hnet_data import generate_hnet_data
    from seldflow.training_state import write_metrics

    n_max, resolutions = int(config["n_max"]), list(config["resolutions"])
    train_seed, test_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    train = generate_hnet_data(n_max, resolutions, config["counts"], train_seed)
    test = generate_hnet_data(n_max, resolutions, config["test_counts"], test_seed)
    settings = {key: value for key, value in config.items() if key not in NOT_TRAINING_KEYS}
    train_settings = HnetTrainSettings(seed=seed, **settings)
    result = train_hnet(train, test, train_settings)
    save_hnet(checkpoint_out, result, {key: config[key] for key in DATA_KEYS} | settings_dict(train_settings))
    write_metrics(Path(metrics_out), result.history, HISTORY_COLUMNS)
    return result
