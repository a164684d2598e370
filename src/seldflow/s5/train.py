"""S5 training stage: the tagger's two fine-tuning steps and the label-queried separators, on generated mixtures.

Mixtures are drawn on the fly from :class:`seldflow.s5.generator.S5Generator`, as the Task 4 baseline does: an
epoch is ``epoch_length`` fresh mixtures, batch ``b`` of epoch ``e`` coming from a generator seeded by
``(seed, e, b)``, so a rerun or a resumed run sees exactly the same mixtures. Validation mixtures are rebuilt from
the dataset's validation metadata (``metadata/valid.json``) and fixed for the whole run.

What is trained is an :class:`Objective` looked up in :data:`OBJECTIVES` by name:

* ``tagger``: binary cross-entropy of the tagger's logits against the multi-hot class set; ``stage`` selects
  which parameters train (``head``, then ``2_blocks`` starting from the best ``head`` checkpoint);
* ``separator``: the negative SNR of the registered separator's estimates against the dry targets; a one-query
  separator (ResUNet) is trained on one random non-silent source per mixture, a slotted one (ResUNetK) on all
  three slots with silent slots masked out of the loss.

Both use the baseline's optimiser (AdamW with AMSGrad), gradient clipping at 0.5 and selection on the validation
loss; after every epoch the state is saved (:mod:`seldflow.training_state`), so a killed run resumes exactly.
``best.pt`` and ``metrics.csv`` appear together when training ends.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from seldflow.checkpoints import load_checkpoint, save_checkpoint
from seldflow.errors import ConfigError, InputError
from seldflow.models.runtime import resolve_device
from seldflow.s5.generator import S5Generator, S5Mixture
from seldflow.s5.vocabulary import multihot, onehot_slots, source_mask
from seldflow.tensorboard_log import TrainingLog
from seldflow.training_state import HISTORY_FILE, STATE_FILE, Progress, fingerprint, resume, save_state, write_metrics

# Keys every S5 checkpoint holds: enough to rebuild the network and to check the audio it expects.
S5_CHECKPOINT_KEYS = ("model_state", "kind", "model_name", "model_args", "sample_rate")
METRICS_COLUMNS = ("epoch", "train_loss", "val_loss", "lr", "seconds")


@dataclass(frozen=True)
class TrainSettings:
    """The optimisation settings of one training run (numbers from the config's step or separator section)."""

    epochs: int
    epoch_length: int
    batch_size: int
    lr: float
    weight_decay: float = 0.01
    grad_clip: float = 0.5
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("epochs", "epoch_length", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError("s5", name, f"must be at least 1, got {getattr(self, name)}")


def settings_from_config(values: Mapping[str, Any], seed: int) -> TrainSettings:
    """:class:`TrainSettings` of a config step (``s5.tagger.head``, ``s5.separator``, ...) with the stage's seed.

    A misspelt or missing key is a config error naming it, not a ``TypeError`` from the dataclass.
    """
    known = {item.name: item for item in fields(TrainSettings) if item.name != "seed"}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError("s5", unknown[0], f"unknown training setting (known: {', '.join(sorted(known))})")
    missing = [name for name, item in known.items() if item.default is MISSING and name not in values]
    if missing:
        raise ConfigError("s5", missing[0], "required training setting is missing")
    return TrainSettings(seed=seed, **values)


@dataclass
class Batch:
    """Tensors of one batch: the mixtures and what the objective needs beside them."""

    mixture: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def to(self, device: torch.device) -> Batch:
        return Batch(self.mixture.to(device), {key: value.to(device) for key, value in self.extras.items()})


class Objective:
    """What one kind of S5 network trains on: how a batch is built, how it is scored, what gets trained."""

    kind: str

    def __init__(self, model_name: str, model_args: Mapping[str, Any]) -> None:
        self.model_name = model_name
        self.model_args = dict(model_args)

    def build(self) -> nn.Module:
        raise NotImplementedError

    def batch(self, mixtures: Sequence[S5Mixture], rng: np.random.Generator) -> Batch:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def trainable(self, model: nn.Module) -> list[nn.Parameter]:
        return [parameter for parameter in model.parameters() if parameter.requires_grad]

    def train_mode(self, model: nn.Module) -> None:
        """Put the network in training mode for an epoch (a step that freezes parts keeps those in eval mode)."""
        model.train()

    def spec(self) -> dict[str, Any]:
        """What a checkpoint records about the network (beside its weights)."""
        return {"kind": self.kind, "model_name": self.model_name, "model_args": self.model_args}


def _stack(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays).astype(np.float32, copy=False))


class TaggerObjective(Objective):
    """Multi-label tagging of the soundscape's target classes (interferers are not targets)."""

    kind = "tagger"

    def __init__(self, model_name: str, model_args: Mapping[str, Any], stage: str = "all") -> None:
        super().__init__(model_name, model_args)
        self.stage = stage
        self._criterion = nn.BCEWithLogitsLoss()

    def build(self) -> nn.Module:
        from seldflow.models.taggers import build_tagger

        return build_tagger(self.model_name, **self.model_args)

    def trainable(self, model: nn.Module) -> list[nn.Parameter]:
        from seldflow.models.taggers import trainable_parameters

        return trainable_parameters(model, self.stage)

    def train_mode(self, model: nn.Module) -> None:
        from seldflow.models.taggers import set_train_mode

        set_train_mode(model, self.stage)

    def batch(self, mixtures: Sequence[S5Mixture], rng: np.random.Generator) -> Batch:
        return Batch(_stack([m.mixture for m in mixtures]), {"target": _stack([multihot(m.labels) for m in mixtures])})

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self._criterion(model(batch.mixture), batch.extras["target"])

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "stage": self.stage}


class SeparatorObjective(Objective):
    """Label-queried separation of the dry targets, scored by negative SNR (the baseline's loss)."""

    kind = "separator"

    def build(self) -> nn.Module:
        from seldflow.models.separators import build_separator

        return build_separator(self.model_name, **self.model_args)

    def batch(self, mixtures: Sequence[S5Mixture], rng: np.random.Generator) -> Batch:
        queries = [onehot_slots(m.labels) for m in mixtures]
        masks = [source_mask(m.labels) for m in mixtures]
        # The one random non-silent slot a one-query separator trains on; drawn for every model so that the
        # data stream does not depend on the model chosen.
        picks = [int(rng.choice(np.flatnonzero(mask))) for mask in masks]
        return Batch(
            _stack([m.mixture for m in mixtures]),
            {
                "queries": _stack(queries),
                "mask": _stack(masks),
                "targets": _stack([m.targets for m in mixtures]),
                "pick": torch.tensor(picks, dtype=torch.long),
            },
        )

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The baseline's loss of the network's kind: one picked query (ResUNet) or all slots (ResUNetK)."""
        from seldflow.s5.separation_loss import masked_slot_loss, single_query_loss, take_slots

        queries, mask, targets = batch.extras["queries"], batch.extras["mask"], batch.extras["targets"]
        if model.n_targets == 1:
            pick = batch.extras["pick"]
            estimate = model(batch.mixture, take_slots(queries, pick).flatten(1), take_slots(mask, pick))
            return single_query_loss(estimate, take_slots(targets, pick))
        return masked_slot_loss(model(batch.mixture, queries.flatten(1), mask), targets, mask)


# Objective name -> factory(model_name, model_args, stage); adding an S5 network kind is one entry here.
OBJECTIVES: dict[str, Callable[..., Objective]] = {
    "tagger": TaggerObjective,
    "separator": lambda name, args, stage=None: SeparatorObjective(name, args),
}


def build_objective(kind: str, model_name: str, model_args: Mapping[str, Any], stage: str | None = None) -> Objective:
    try:
        factory = OBJECTIVES[kind]
    except KeyError:
        raise ConfigError("s5", "kind", f"unknown S5 network kind {kind!r} (known: {', '.join(OBJECTIVES)})") from None
    return factory(model_name, model_args, stage) if stage else factory(model_name, model_args)


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------


def batch_rng(seed: int, epoch: int, batch: int) -> np.random.Generator:
    """The generator of one training batch: independent of how many batches ran before (resume, workers)."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, batch]))


def epoch_batch_sizes(epoch_length: int, batch_size: int) -> list[int]:
    """Sizes of the batches of one epoch; the last one holds the remainder."""
    full, rest = divmod(epoch_length, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


# ---------------------------------------------------------------------------------------------------------------
# Loop
# ---------------------------------------------------------------------------------------------------------------


def _evaluate(objective: Objective, model: nn.Module, batches: Sequence[Batch], device: torch.device) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            size = batch.mixture.shape[0]
            total += float(objective.loss(model, batch.to(device))) * size
            count += size
    return total / max(count, 1)


def _train_epoch(
    objective: Objective,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: S5Generator,
    settings: TrainSettings,
    epoch: int,
    device: torch.device,
) -> float:
    objective.train_mode(model)
    parameters = [p for p in model.parameters() if p.requires_grad]
    total, count = 0.0, 0
    sizes = epoch_batch_sizes(settings.epoch_length, settings.batch_size)
    for index, size in enumerate(tqdm(sizes, desc=f"{objective.kind} epoch {epoch + 1}", leave=False)):
        rng = batch_rng(settings.seed, epoch, index)
        batch = objective.batch([generator.generate(rng) for _ in range(size)], rng).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = objective.loss(model, batch)
        loss.backward()
        nn.utils.clip_grad_norm_(parameters, settings.grad_clip)
        optimizer.step()
        total += float(loss.detach()) * size
        count += size
    return total / count


def _initialise(model: nn.Module, init_from: Path | None, objective: Objective) -> None:
    """Start from an earlier step's best checkpoint (tagger step 2 from step 1) when one is given."""
    if init_from is None:
        return
    checkpoint = load_s5_checkpoint(init_from, objective.kind)
    if checkpoint["model_name"] != objective.model_name or checkpoint["model_args"] != objective.model_args:
        raise InputError(init_from, "was trained with another model or model_args than this step", field="model")
    model.load_state_dict(checkpoint["model_state"])


def train_s5(
    objective: Objective,
    generator: S5Generator,
    validation: Sequence[Mapping[str, Any]],
    settings: TrainSettings,
    *,
    checkpoint_out: str | Path,
    metrics_out: str | Path,
    state_dir: str | Path,
    init_from: str | Path | None = None,
    pretrained: Callable[[nn.Module], None] | None = None,
    validation_generator: S5Generator | None = None,
    inputs_signature: str = "",
) -> dict[str, Any]:
    """Train ``objective``'s network; write the best checkpoint and the per-epoch metrics. Returns the best row.

    ``pretrained`` loads external weights (the M2D backbone) before the step's parameters are chosen;
    ``validation_generator`` renders the validation soundscapes (they come from the validation bank and rooms;
    ``generator`` by default); ``inputs_signature`` identifies the data (bank, rooms, validation) so that a state
    saved on other data is not resumed.
    """
    state_dir = Path(state_dir)
    torch.manual_seed(settings.seed)
    model = objective.build()
    if pretrained is not None:
        pretrained(model)
    _initialise(model, Path(init_from) if init_from else None, objective)
    device = resolve_device(settings.device)
    model.to(device)
    optimizer = torch.optim.AdamW(
        objective.trainable(model), lr=settings.lr, weight_decay=settings.weight_decay, amsgrad=True
    )
    arguments = {
        "objective": objective.spec(),
        "settings": {k: v for k, v in asdict(settings).items() if k not in ("epochs", "device")},
        "generator": asdict(generator.settings),
        "inputs": inputs_signature,
        "init_from": _file_digest(init_from) if init_from else None,
    }
    run_fingerprint = fingerprint(arguments, [])
    modules = {"model": model, "optimizer": optimizer}
    progress = resume(state_dir / STATE_FILE, run_fingerprint, settings.epochs, modules, seed=settings.seed)
    progress = progress or Progress()
    validation_batches = _validation_batches(objective, validation_generator or generator, validation, settings)
    log = TrainingLog(state_dir, progress.epoch)
    try:
        for epoch in range(progress.epoch, settings.epochs):
            started = time.monotonic()
            train_loss = _train_epoch(objective, model, optimizer, generator, settings, epoch, device)
            val_loss = _evaluate(objective, model, validation_batches, device)
            row = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": settings.lr,
                "seconds": time.monotonic() - started,
            }
            progress.epoch = epoch + 1
            progress.history.append(row)
            if progress.record(-val_loss if math.isfinite(val_loss) else -math.inf):
                progress.best = {"row": row, "model_state": _cpu_state(model)}
            tqdm.write(f"{objective.kind} epoch {epoch + 1}: train {train_loss:.4f}, validation {val_loss:.4f}")
            log.log_epoch(row)
            write_metrics(state_dir / HISTORY_FILE, progress.history, METRICS_COLUMNS)
            save_state(state_dir / STATE_FILE, run_fingerprint, progress, modules)
    finally:
        log.close()
    assert progress.best is not None  # at least one epoch ran (epochs >= 1)
    save_checkpoint(
        Path(checkpoint_out),
        {
            **objective.spec(),
            "model_state": progress.best["model_state"],
            "sample_rate": generator.settings.sample_rate,
            "epoch": progress.best["row"]["epoch"],
            "val_loss": progress.best["row"]["val_loss"],
        },
    )
    write_metrics(Path(metrics_out), progress.history, METRICS_COLUMNS)
    return dict(progress.best["row"])


def _validation_batches(
    objective: Objective,
    generator: S5Generator,
    validation: Sequence[Mapping[str, Any]],
    settings: TrainSettings,
) -> list[Batch]:
    """The fixed validation batches (a separator's random slot choice seeded apart from training)."""
    mixtures = [generator.render(dict(record)) for record in tqdm(validation, desc="validation mixtures", leave=False)]
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, -1 % 2**32]))
    return [
        objective.batch(mixtures[start : start + settings.batch_size], rng)
        for start in range(0, len(mixtures), settings.batch_size)
    ]


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


def _file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_s5_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """An S5 checkpoint, checked to hold a network of ``kind`` (tagger or separator) when given."""
    checkpoint = load_checkpoint(Path(path), S5_CHECKPOINT_KEYS)
    if kind is not None and checkpoint["kind"] != kind:
        raise InputError(path, f"holds a {checkpoint['kind']}, not a {kind}", field="kind")
    return checkpoint


def model_from_s5_checkpoint(path: str | Path, kind: str) -> tuple[nn.Module, dict[str, Any]]:
    """The network of an S5 checkpoint with its weights loaded, in evaluation mode, and the checkpoint."""
    checkpoint = load_s5_checkpoint(path, kind)
    model = build_objective(kind, checkpoint["model_name"], checkpoint["model_args"]).build()
    try:
        model.load_state_dict(checkpoint["model_state"])
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit model {checkpoint['model_name']!r} ({exc})") from None
    return model.eval(), checkpoint


# ---------------------------------------------------------------------------------------------------------------
# Workflow entry
# ---------------------------------------------------------------------------------------------------------------


def with_sample_rate(kind: str, model_args: Mapping[str, Any], sample_rate: int) -> dict[str, Any]:
    """``model_args`` with the generator's sample rate given to the tagger's front end.

    The rate is a fact of the data (``s5.generator.sample_rate``), so the config states it once; a front end
    configured with another rate would compute wrong mel bands, hence an error rather than an override.
    """
    args = dict(model_args)
    if kind != "tagger":
        return args
    front_end = dict(args.get("front_end") or {})
    if front_end.setdefault("sample_rate", sample_rate) != sample_rate:
        raise ConfigError(
            "s5", "tagger.model_args.front_end.sample_rate", f"must equal s5.generator.sample_rate ({sample_rate})"
        )
    args["front_end"] = front_end
    return args


def run_training(
    *,
    root: str | Path,
    generator: Mapping[str, Any],
    network: Mapping[str, Any],
    settings: Mapping[str, Any],
    seed: int,
    validation: str | Path,
    checkpoint_out: str | Path,
    metrics_out: str | Path,
    state_dir: str | Path,
    init_from: str | Path | Sequence[str] | None = None,
    weights: str | Path | Sequence[str] | None = None,
    added: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
) -> dict[str, Any]:
    """Train the configured tagger step or separator of a Task 4 dataset folder (the rules' entry point).

    ``added``: cleaned added banks joined to the train and valid splits (:func:`seldflow.s5.generator.open_generator`).
    """
    from seldflow.s5.generator import generator_signature, open_generator
    from seldflow.s5.soundscapes import read_descriptions

    train_generator = open_generator(root, "train", generator, added)
    valid_generator = open_generator(root, "valid", generator, added)
    kind = network["kind"]
    model_args = with_sample_rate(kind, network.get("model_args") or {}, train_generator.settings.sample_rate)
    objective = build_objective(kind, network["model"], model_args, network.get("stage"))
    descriptions = read_descriptions(_single(validation))
    weights_path = _single(weights)
    pretrained = None
    if weights_path is not None:
        from seldflow.models.taggers import load_m2d_weights

        def pretrained(model: nn.Module) -> None:
            load_m2d_weights(model, weights_path)

    return train_s5(
        objective,
        train_generator,
        descriptions,
        settings_from_config(settings, seed),
        checkpoint_out=checkpoint_out,
        metrics_out=metrics_out,
        state_dir=state_dir,
        init_from=_single(init_from),
        pretrained=pretrained,
        validation_generator=valid_generator,
        inputs_signature=json.dumps(
            {
                "bank": generator_signature(train_generator),
                "valid": generator_signature(valid_generator),
                "descriptions": hashlib.sha256(json.dumps(descriptions, sort_keys=True).encode()).hexdigest(),
                "weights": str(weights_path),
            }
        ),
    )


def _single(paths: str | Path | Sequence[str] | None) -> Path | None:
    """The one path of a rule input that is a list of zero or one files."""
    if paths is None or isinstance(paths, (str, Path)):
        return Path(paths) if paths else None
    return Path(paths[0]) if len(paths) else None


def check_networks(s5: Mapping[str, Any]) -> None:
    """Build the configured tagger and separator on PyTorch's meta device, before any job runs.

    A misspelt or invalid ``model_args`` entry, or a tagger front end at another rate than the generator's,
    then fails the dry run with a :class:`ConfigError` naming the key instead of a training job later.
    """
    sample_rate = s5["generator"]["sample_rate"]
    for kind, section in (("tagger", s5["tagger"]), ("separator", s5["separator"])):
        args = with_sample_rate(kind, section.get("model_args") or {}, sample_rate)
        with torch.device("meta"):
            build_objective(kind, section["model"], args).build()
