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
  three slots with silent slots masked out of the loss;
* ``sed``: the second-place system's sound event detector (:mod:`seldflow.models.sed`) on channel 0, loss
  ``0.5 * BCE(clip) + 0.5 * BCE(frames)`` with frame labels rasterised from the generator's ``on_offset``, its
  backbone trained with layer-wise learning-rate decay (``param_groups.layer_decay``);
* ``guided_separator``: the SED-guided separators (:mod:`seldflow.models.guided`), trained as the one-query
  separator (one random non-silent source, -SNR), with the reference's parameter groups (new parts, pretrained
  U-Net, DPRNN, Stage-2 SED with layer decay; ``param_groups``) and external weights (AudioSep, an M2D checkpoint,
  or the fine-tuned SED of the ``sed`` objective for the Stage-2 SED). An iterative separator draws its pass
  count itself, from its seed and a draw counter that is part of its state (so a resumed run draws the same).

All use the baseline's optimiser (AdamW with AMSGrad), gradient clipping at 0.5 and selection on the validation
loss; an objective with parameter groups gives each its own rate, and ``warmup_steps`` adds the reference's
per-step cosine schedule with linear warm-up (constant rates without it, as the baseline). After every epoch the
state is saved (:mod:`seldflow.training_state`), so a killed run resumes exactly. ``best.pt`` and
``metrics.csv`` appear together when training ends.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
from seldflow.s5.experiments import experiment_runs, separator_sections, split_section
from seldflow.s5.generator import S5Generator, S5Mixture
from seldflow.s5.vocabulary import FRAME_RATE, frame_labels, multihot, onehot_slots, source_mask
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
    # The per-step cosine schedule: linear warm-up over ``warmup_steps``, then down to ``lr_end``; None: constant.
    warmup_steps: int | None = None
    lr_end: float = 0.0

    def __post_init__(self) -> None:
        for name in ("epochs", "epoch_length", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError("s5", name, f"must be at least 1, got {getattr(self, name)}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ConfigError("s5", "warmup_steps", f"must be at least 0, got {self.warmup_steps}")
        if self.lr_end and self.warmup_steps is None:
            raise ConfigError("s5", "lr_end", "needs the cosine schedule: set warmup_steps (0 for none)")

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the run's optimisation, for resuming: everything but the device and, without a schedule,
        the epoch count (so such a run may be extended). A scheduled run's rates depend on its length."""
        values = {k: v for k, v in asdict(self).items() if k not in ("epochs", "device", "warmup_steps", "lr_end")}
        if self.warmup_steps is not None:
            values.update(epochs=self.epochs, warmup_steps=self.warmup_steps, lr_end=self.lr_end)
        return values


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
    # Names of the external weight files :meth:`load_pretrained` takes (rule inputs of the same names).
    pretrained_keys: tuple[str, ...] = ()

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

    def parameter_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """The optimiser's parameter groups; by default one, of :meth:`trainable`, at the run's rate and decay."""
        return [{"params": self.trainable(model)}]

    def check_pretrained(self, names: Sequence[str]) -> None:
        """External weights this objective cannot load are a config error (before any job runs)."""
        unknown = sorted(set(names) - set(self.pretrained_keys))
        if unknown:
            known = ", ".join(self.pretrained_keys) or "none"
            raise ConfigError("s5", f"pretrained.{unknown[0]}", f"not taken by a {self.kind} (takes: {known})")

    def load_pretrained(self, model: nn.Module, files: Mapping[str, Path]) -> None:
        """Load external weights (``files`` keyed by :attr:`pretrained_keys`) before training starts."""
        self.check_pretrained(list(files))
        if "weights" in files:
            from seldflow.models.taggers import load_m2d_weights

            load_m2d_weights(model, files["weights"])

    def summary(
        self, model: nn.Module, best_state: Mapping[str, torch.Tensor], batches: Sequence[Batch], device: torch.device
    ) -> dict[str, Any]:
        """Figures of the best weights on the validation batches, kept in the checkpoint (none by default)."""
        return {}

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
    pretrained_keys = ("weights",)

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


def group_options(function: Callable[..., Any], options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``param_groups`` of the config checked against the keyword arguments of a group ``function`` (the rates and
    decays it takes beyond the model, the run's ``lr`` and ``weight_decay``, and its group name)."""
    parameters = inspect.signature(function).parameters
    allowed = {name: p for name, p in list(parameters.items())[1:] if name not in ("lr", "weight_decay", "name")}
    options = dict(options or {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError("s5", f"param_groups.{unknown[0]}", f"unknown option (known: {', '.join(allowed)})")
    missing = [n for n, p in allowed.items() if p.default is inspect.Parameter.empty and n not in options]
    if missing:
        raise ConfigError("s5", f"param_groups.{missing[0]}", "required option is missing")
    return options


class SEDObjective(Objective):
    """The sound event detector: clip (weak) and frame (strong) binary cross-entropy on channel 0.

    Frame labels come from each mixture's ``on_offset`` on the detector's grid: ``frame_rate`` frames per second
    (its ``model_args``, 25 by default) of the mixture's duration, the grid the detector pools its features to.
    """

    kind = "sed"
    pretrained_keys = ("weights",)

    def __init__(
        self, model_name: str, model_args: Mapping[str, Any], param_groups: Mapping[str, Any] | None = None
    ) -> None:
        from seldflow.models.sed import sed_parameter_groups

        super().__init__(model_name, model_args)
        self.group_options = group_options(sed_parameter_groups, param_groups)

    def build(self) -> nn.Module:
        from seldflow.models.sed import build_sed

        return build_sed(self.model_name, **self.model_args)

    def batch(self, mixtures: Sequence[S5Mixture], rng: np.random.Generator) -> Batch:
        frame_rate = float(self.model_args.get("frame_rate", FRAME_RATE))
        frames = [frame_labels(m.metadata["on_offset"], _seconds(m), frame_rate=frame_rate) for m in mixtures]
        return Batch(
            _stack([m.mixture[0] for m in mixtures]),
            {"clip": _stack([multihot(m.labels) for m in mixtures]), "frames": _stack(frames)},
        )

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        from seldflow.models.sed import sed_loss

        return sed_loss(model(batch.mixture), batch.extras["clip"], batch.extras["frames"])

    def parameter_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        from seldflow.models.param_groups import check_partition
        from seldflow.models.sed import sed_parameter_groups

        groups = sed_parameter_groups(model, lr, weight_decay=weight_decay, **self.group_options)
        check_partition(model, groups)
        return groups

    def summary(
        self, model: nn.Module, best_state: Mapping[str, torch.Tensor], batches: Sequence[Batch], device: torch.device
    ) -> dict[str, Any]:
        """The evaluation's threshold sweep: validation label accuracy (%) of the best weights per threshold 0.1-0.9
        (the selection rule on the clip probabilities), to choose ``s5.sed.threshold`` from."""
        from seldflow.models.sed import threshold_sweep
        from seldflow.s5.vocabulary import LABELS

        model.load_state_dict(best_state)
        model.eval()
        with torch.no_grad():
            clips = [model(batch.mixture.to(device)).weak.cpu().numpy() for batch in batches]
        targets = [row for batch in batches for row in batch.extras["clip"].numpy()]
        references = [[LABELS[i] for i in np.flatnonzero(row)] for row in targets]
        return {"threshold_sweep": threshold_sweep(np.concatenate(clips), references)}

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "param_groups": self.group_options}


def _seconds(mixture: S5Mixture) -> float:
    return mixture.mixture.shape[-1] / mixture.metadata["sample_rate"]


class GuidedSeparatorObjective(SeparatorObjective):
    """A guided separator (one query per pass) with the reference's parameter groups and external weights."""

    pretrained_keys = ("audiosep_checkpoint", "sed_checkpoint", "sed_finetuned")

    def __init__(
        self, model_name: str, model_args: Mapping[str, Any], param_groups: Mapping[str, Any] | None = None
    ) -> None:
        from seldflow.models.guided import guided_parameter_groups

        super().__init__(model_name, model_args)
        self.group_options = group_options(guided_parameter_groups, param_groups)

    def parameter_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        from seldflow.models.guided import guided_parameter_groups
        from seldflow.models.param_groups import check_partition

        groups = guided_parameter_groups(model, lr=lr, weight_decay=weight_decay, **self.group_options)
        check_partition(model, groups)
        return groups

    def load_pretrained(self, model: nn.Module, files: Mapping[str, Path]) -> None:
        """AudioSep into the U-Net and an M2D checkpoint into the Stage-2 SED, or the fine-tuned SED into it."""
        from seldflow.models.guided import load_guided_pretrained

        self.check_pretrained(list(files))
        if "sed_checkpoint" in files and "sed_finetuned" in files:
            raise ConfigError("s5", "pretrained", "give the Stage-2 SED one start: sed_checkpoint or sed_finetuned")
        try:
            load_guided_pretrained(
                model,
                audiosep_checkpoint=files.get("audiosep_checkpoint"),
                sed_checkpoint=files.get("sed_checkpoint"),
            )
        except ValueError as exc:
            raise ConfigError("s5", "pretrained.sed_checkpoint", str(exc)) from None
        if "sed_finetuned" in files:
            load_finetuned_sed(model, files["sed_finetuned"])

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "param_groups": self.group_options}


def load_finetuned_sed(model: nn.Module, path: str | Path) -> None:
    """The ``sed`` objective's best checkpoint into a guided separator's Stage-2 SED (same model and arguments)."""
    sed = getattr(model, "sed", None)
    if sed is None:
        raise ConfigError("s5", "pretrained.sed_finetuned", "the separator has no Stage-2 SED to start")
    checkpoint = load_s5_checkpoint(path, "sed")
    settings = model.sed_settings
    if checkpoint["model_name"] != settings.model or checkpoint["model_args"] != dict(settings.model_args):
        raise InputError(path, "was trained with another model or model_args than the Stage-2 SED", field="model")
    sed.load_state_dict(checkpoint["model_state"])


# Objective name -> factory(model_name, model_args, **options); adding an S5 network kind is one entry here.
OBJECTIVES: dict[str, Callable[..., Objective]] = {
    "tagger": TaggerObjective,
    "separator": SeparatorObjective,
    "sed": SEDObjective,
    "guided_separator": GuidedSeparatorObjective,
}
# Every external weight file an objective may take: the training rules' input names.
WEIGHT_INPUTS: tuple[str, ...] = tuple(dict.fromkeys(k for o in OBJECTIVES.values() for k in o.pretrained_keys))
# Separator model -> its objective, where not the baseline's "separator".
SEPARATOR_OBJECTIVES: dict[str, str] = {
    "guided_resunet": "guided_separator",
    "guided_resunet_iterative": "guided_separator",
}


def separator_objective(model_name: str) -> str:
    """The objective a separator model trains with."""
    return SEPARATOR_OBJECTIVES.get(model_name, "separator")


def build_objective(
    kind: str,
    model_name: str,
    model_args: Mapping[str, Any],
    stage: str | None = None,
    param_groups: Mapping[str, Any] | None = None,
) -> Objective:
    """The objective ``kind``; ``stage`` (tagger) and ``param_groups`` (sed, guided_separator) only where given."""
    try:
        factory = OBJECTIVES[kind]
    except KeyError:
        raise ConfigError("s5", "kind", f"unknown S5 network kind {kind!r} (known: {', '.join(OBJECTIVES)})") from None
    options = {key: value for key, value in (("stage", stage), ("param_groups", param_groups)) if value}
    try:
        return factory(model_name, model_args, **options)
    except TypeError:
        if not options:
            raise
        given = ", ".join(options)
        raise ConfigError("s5", next(iter(options)), f"a {kind} objective takes no {given}") from None


def network_objective(network: Mapping[str, Any]) -> Objective:
    """The objective of a rule's ``network`` mapping (``kind``, ``model``, ``model_args``, ``stage``, ...)."""
    return build_objective(
        network["kind"], network["model"], network["model_args"], network.get("stage"), network.get("param_groups")
    )


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
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
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
        if scheduler is not None:
            scheduler.step()
        total += float(loss.detach()) * size
        count += size
    return total / count


def _schedule(optimizer: torch.optim.Optimizer, settings: TrainSettings) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-step cosine schedule with warm-up over the whole run, or None for constant rates."""
    if settings.warmup_steps is None:
        return None
    from seldflow.models.param_groups import cosine_with_warmup

    steps = settings.epochs * len(epoch_batch_sizes(settings.epoch_length, settings.batch_size))
    return cosine_with_warmup(optimizer, settings.warmup_steps, steps, settings.lr_end)


def _current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The highest group rate now (the run's ``lr`` when constant; the "new" parts' rate of a guided separator)."""
    return max(group["lr"] for group in optimizer.param_groups)


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

    ``pretrained`` loads external weights (an M2D backbone, AudioSep, a fine-tuned SED) before the step's
    parameters are chosen;
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
        objective.parameter_groups(model, settings.lr, settings.weight_decay),
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        amsgrad=True,
    )
    scheduler = _schedule(optimizer, settings)
    arguments = {
        "objective": objective.spec(),
        "settings": settings.fingerprint(),
        "generator": asdict(generator.settings),
        "inputs": inputs_signature,
        "init_from": _file_digest(init_from) if init_from else None,
    }
    run_fingerprint = fingerprint(arguments, [])
    modules: dict[str, Any] = {"model": model, "optimizer": optimizer}
    if scheduler is not None:
        modules["scheduler"] = scheduler
    progress = resume(state_dir / STATE_FILE, run_fingerprint, settings.epochs, modules, seed=settings.seed)
    progress = progress or Progress()
    validation_batches = _validation_batches(objective, validation_generator or generator, validation, settings)
    log = TrainingLog(state_dir, progress.epoch)
    try:
        for epoch in range(progress.epoch, settings.epochs):
            started = time.monotonic()
            train_loss = _train_epoch(objective, model, optimizer, generator, settings, epoch, device, scheduler)
            val_loss = _evaluate(objective, model, validation_batches, device)
            row = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": _current_lr(optimizer),
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
    summary = objective.summary(model, progress.best["model_state"], validation_batches, device)
    for key, value in summary.items():
        tqdm.write(f"{objective.kind} {key}: {value}")
    save_checkpoint(
        Path(checkpoint_out),
        {
            **objective.spec(),
            "model_state": progress.best["model_state"],
            "sample_rate": generator.settings.sample_rate,
            "epoch": progress.best["row"]["epoch"],
            "val_loss": progress.best["row"]["val_loss"],
            **summary,
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
    name = checkpoint["model_name"]
    objective = separator_objective(name) if kind == "separator" else kind
    groups = checkpoint.get("param_groups")
    model = build_objective(objective, name, checkpoint["model_args"], param_groups=groups).build()
    try:
        model.load_state_dict(checkpoint["model_state"])
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit model {checkpoint['model_name']!r} ({exc})") from None
    return model.eval(), checkpoint


# ---------------------------------------------------------------------------------------------------------------
# Workflow entry
# ---------------------------------------------------------------------------------------------------------------


def with_sample_rate(kind: str, model_args: Mapping[str, Any], sample_rate: int) -> dict[str, Any]:
    """``model_args`` with the generator's sample rate given where a network's input rate is set: the tagger's front
    end, the detector's ``input_rate`` (it resamples to its own front end's rate) and a guided separator's Stage-2
    SED's ``input_rate``.

    The rate is a fact of the data (``s5.generator.sample_rate``), so the config states it once; a network
    configured with another rate would compute wrong mel bands, hence an error rather than an override.
    """
    setter = SAMPLE_RATE_SETTERS.get(kind)
    return setter(dict(model_args), sample_rate) if setter else dict(model_args)


def _rate_into(args: dict[str, Any], key: str, sample_rate: int, where: str) -> dict[str, Any]:
    """``args`` with ``args[key] = sample_rate`` unless it states another rate (a config error naming ``where``)."""
    if args.setdefault(key, sample_rate) != sample_rate:
        raise ConfigError("s5", where, f"must equal s5.generator.sample_rate ({sample_rate})")
    return args


def _tagger_rate(args: dict[str, Any], sample_rate: int) -> dict[str, Any]:
    front_end = _rate_into(
        dict(args.get("front_end") or {}), "sample_rate", sample_rate, "tagger.model_args.front_end.sample_rate"
    )
    return {**args, "front_end": front_end}


def _sed_rate(args: dict[str, Any], sample_rate: int) -> dict[str, Any]:
    return _rate_into(args, "input_rate", sample_rate, "sed.model_args.input_rate")


def _guided_rate(args: dict[str, Any], sample_rate: int) -> dict[str, Any]:
    stage2 = args.get("sed")
    if not isinstance(stage2, Mapping):
        return args
    where = "separator.model_args.sed.model_args.input_rate"
    sed_args = _rate_into(dict(stage2.get("model_args") or {}), "input_rate", sample_rate, where)
    return {**args, "sed": {**stage2, "model_args": sed_args}}


# Objective -> how its model_args take the generator's rate (objectives not listed take none).
SAMPLE_RATE_SETTERS: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {
    "tagger": _tagger_rate,
    "sed": _sed_rate,
    "guided_separator": _guided_rate,
}


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
    weights: str | Path | Sequence[str] | Mapping[str, str | Path | Sequence[str] | None] | None = None,
    added: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
) -> dict[str, Any]:
    """Train the configured tagger step, detector or separator of a Task 4 dataset folder (the rules' entry point).

    ``network`` holds ``kind`` (an :data:`OBJECTIVES` name), ``model``, ``model_args`` and, where the objective
    takes them, ``stage`` and ``param_groups``. ``weights`` are the external weight files, keyed by the
    objective's :attr:`Objective.pretrained_keys` (each a path or a rule input of zero or one file); a bare path
    is the ``weights`` entry (an M2D checkpoint). ``added``: cleaned added banks joined to the train and valid
    splits (:func:`seldflow.s5.generator.open_generator`).
    """
    from seldflow.s5.generator import generator_signature, open_generator
    from seldflow.s5.soundscapes import read_descriptions

    train_generator = open_generator(root, "train", generator, added)
    valid_generator = open_generator(root, "valid", generator, added)
    kind = network["kind"]
    model_args = with_sample_rate(kind, network.get("model_args") or {}, train_generator.settings.sample_rate)
    objective = network_objective({**network, "model_args": model_args})
    descriptions = read_descriptions(_single(validation))
    files = _weight_files(weights)
    objective.check_pretrained(list(files))
    pretrained = None
    if files:

        def pretrained(model: nn.Module) -> None:
            objective.load_pretrained(model, files)

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
                "weights": str(files.get("weights")),
                # Other external weights by content: a retrained fine-tuned SED is another run.
                **{name: _file_digest(path) for name, path in files.items() if name != "weights"},
            }
        ),
    )


def _weight_files(
    weights: str | Path | Sequence[str] | Mapping[str, str | Path | Sequence[str] | None] | None,
) -> dict[str, Path]:
    """The given external weight files by name (empty rule inputs left out)."""
    if not isinstance(weights, Mapping):
        weights = {"weights": weights}
    files = {name: _single(value) for name, value in weights.items()}
    return {name: path for name, path in files.items() if path is not None}


def _single(paths: str | Path | Sequence[str] | None) -> Path | None:
    """The one path of a rule input that is a list of zero or one files."""
    if paths is None or isinstance(paths, (str, Path)):
        return Path(paths) if paths else None
    return Path(paths[0]) if len(paths) else None


@contextmanager
def _config_section(where: str) -> Iterator[None]:
    """Config errors raised inside name their keys under ``where`` (``sed``, ``experiments.<name>``, ...)."""
    try:
        yield
    except ConfigError as error:
        key = error.key.removeprefix("separator.").removeprefix("sed.")
        raise ConfigError(error.source, f"{where}.{key}", error.message) from None


def section_network(section: Mapping[str, Any], kind: str, sample_rate: int) -> dict[str, Any]:
    """The ``network`` of :func:`run_training` for a resolved config section (``s5.sed``, a separator section)."""
    return {
        "kind": kind,
        "model": section["model"],
        "model_args": with_sample_rate(kind, section.get("model_args") or {}, sample_rate),
        **({"param_groups": section["param_groups"]} if section.get("param_groups") else {}),
    }


def sed_training_settings(sed: Mapping[str, Any]) -> dict[str, Any]:
    """The training settings of ``s5.sed`` (its keys that are not the detector's own)."""
    return {key: value for key, value in sed.items() if key not in SED_KEYS}


# Keys of ``s5.sed`` that describe the detector, its weights and its use; the others are TrainSettings.
SED_KEYS = ("model", "model_args", "param_groups", "weights", "threshold")


def check_networks(s5: Mapping[str, Any]) -> None:
    """Build the configured tagger, detector and every experiment's separator on PyTorch's meta device, and check
    their training settings, parameter groups and external weights, before any job runs.

    A misspelt or invalid ``model_args`` entry (a guided option without a Stage-2 SED, an unknown merge method,
    ``max_iterations`` < 1, ...), a network input at another rate than the generator's, inference iterations for
    a separator that does not iterate, or a Stage-2 SED the fine-tuned detector cannot start, then fails the dry
    run with a :class:`ConfigError` naming the key instead of a training job later.
    """
    sample_rate = s5["generator"]["sample_rate"]
    tagger = s5["tagger"]
    args = with_sample_rate("tagger", tagger.get("model_args") or {}, sample_rate)
    with torch.device("meta"):
        build_objective("tagger", tagger["model"], args).build()
    sed = s5["sed"]
    with _config_section("sed"):
        sed_network = section_network(sed, "sed", sample_rate)
        settings_from_config(sed_training_settings(sed), 0)
        objective = network_objective(sed_network)
        with torch.device("meta"):
            objective.build()
    for name, section in separator_sections(s5).items():
        with _config_section("separator" if name == s5["experiment"] else f"experiments.{name}"):
            _check_separator(s5, name, section, sed_network, sample_rate)


def _check_separator(
    s5: Mapping[str, Any], name: str, section: Mapping[str, Any], sed_network: Mapping[str, Any], sample_rate: int
) -> None:
    network, settings = split_section(section)
    settings_from_config(settings, 0)
    kind = separator_objective(network["model"])
    network = section_network(network, kind, sample_rate)
    objective = network_objective(network)
    pretrained = {key: value for key, value in (section.get("pretrained") or {}).items() if value}
    objective.check_pretrained(list(pretrained))
    with torch.device("meta"):
        model = objective.build()
    if any(run.inference_iterations for run in experiment_runs(s5, name)) and not hasattr(
        model, "inference_iterations"
    ):
        raise ConfigError("s5", "inference_iterations", f"{network['model']!r} does not iterate")
    if pretrained.get("sed_finetuned"):
        stage2 = network["model_args"].get("sed") or {}
        if "sed_checkpoint" in pretrained:
            raise ConfigError("s5", "pretrained", "give the Stage-2 SED one start: sed_checkpoint or sed_finetuned")
        if stage2.get("model") != sed_network["model"] or dict(stage2.get("model_args") or {}) != dict(
            sed_network["model_args"]
        ):
            raise ConfigError(
                "s5", "pretrained.sed_finetuned", "the Stage-2 SED is not s5.sed (leave model_args.sed.model out)"
            )
