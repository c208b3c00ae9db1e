"""What ``expresso resume RUN KEY=VALUE ...`` may change, and how each change is put into the restored run.

A resume continues the run "with these settings": what a checkpoint holds
is restored, then every setting the command line changed is applied on top
of it, or the resume is refused before anything is written, naming the key
and why it cannot change.

- Applied: how long and how to train on (``trainer.max_epochs``,
  ``max_steps``, ``limit_*``, ``val_every_n_epochs``, ``log_every_n_steps``,
  ``eval_batch_size``, ``device``, ``compile``, ``requeue``,
  ``auto_resume``, ``stop_on_non_finite``), loader workers, every optimizer hyperparameter (the new values
  replace the checkpoint's in each param group; its moment estimates are
  kept), the schedule (rebuilt from its new config and stepped to the
  resumed position, so the learning rate is what a run with these settings
  from the start would have now), callbacks (each keeps what it learned:
  early stopping's best and wait count with its new patience), loggers, loss
  arguments and weights, a stage's epochs and stop conditions, ``predict``.
- Refused: what the checkpoint's contents belong to (model, data, graph,
  pipelines, task, metrics, step), what picked the best checkpoint so far
  (``trainer.monitor``/``mode``), and what decides the order of samples
  (``trainer.seed``, ``batch_size``, ``accumulate_grad_batches``,
  ``dataloader.shuffle``/``drop_last``).
- A run killed before its first checkpoint is started again from the
  beginning (``restart``): there is no checkpoint whose contents a change
  could contradict, so every change is applied as ``expresso train`` applies
  an override, except ``name`` (the run folder is named after it).
"""

from __future__ import annotations

import logging
from typing import Any

from ..config import ConfigError, Problem
from ..config.errors import format_key
from ..runs.folder import CheckpointFolder

log = logging.getLogger("expresso")

_TRAINER_FIXED = {
    "seed": "the random state continues from the checkpoint",
    "batch_size": "the checkpoint's loader position counts batches of the old size",
    "accumulate_grad_batches": "the checkpoint's step count and loader position were counted in windows of the old size",
    "monitor": f"{CheckpointFolder.BEST} and the summary's best value were chosen by the old monitor: a run keeps one (start a new run with init_from to select by another)",
    "mode": f"{CheckpointFolder.BEST} and the summary's best value were chosen in the old direction: a run keeps one",
    "validate_before_fit": "it runs before the first step only",
    "devices": "the checkpoint's loader position counts each process's share of the batches; start a new run with init_from: RUN to train with another count",
    "num_nodes": "the checkpoint's loader position counts each process's share of the batches; start a new run with init_from: RUN to train with another count",
    "strategy": "the run trains as it started (docs/scale.md); start a new run with init_from: RUN to train otherwise",
}
_LOADER_FIXED = {
    "shuffle": "the checkpoint's loader position belongs to the old order of samples",
    "drop_last": "the checkpoint's loader position counts the old batches",
}
_SECTION_FIXED = {
    "model": "the checkpoint holds the weights of the model as it was (start a new run with init_from: RUN to reuse them)",
    "models": "the checkpoint holds the weights of the models as they were (start a new run with init_from: RUN to reuse them)",
    "graph": "the checkpoint's weights and optimizer states belong to the graph as it was",
    "dataset": "the checkpoint's loader position belongs to the data as it was",
    "datasets": "the checkpoint's loader position belongs to the data as it was",
    "pipelines": "the checkpoint's loader positions and metric sums belong to the pipelines as they were",
    "task": "its values were injected into the model and data, which a resume keeps",
    "metrics": "the checkpoint's running metric sums belong to the metrics as they were",
    "step": "the run was trained by the step as it was",
    "name": "the run folder is named after the experiment",
    "init_from": "a resume takes its weights from its own checkpoint",
}


def diff(old: Any, new: Any, path: tuple = ()) -> dict[tuple, dict[str, Any]]:
    """Key path -> {"from": old, "to": new} for every value that differs (a missing side is left out).

    Mappings are compared key by key and lists of one length item by item;
    anything else that differs (a list that grew, a scalar) is one change.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        changes: dict[tuple, dict[str, Any]] = {}
        for key in [*old, *(k for k in new if k not in old)]:
            if key not in new:
                changes[path + (key,)] = {"from": old[key]}
            elif key not in old:
                changes[path + (key,)] = {"to": new[key]}
            else:
                changes.update(diff(old[key], new[key], path + (key,)))
        return changes
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        changes = {}
        for index, (a, b) in enumerate(zip(old, new)):
            changes.update(diff(a, b, path + (index,)))
        return changes
    if old == new and type(old) is type(new):
        return {}
    return {path: {"from": old, "to": new}}


def refusal(path: tuple) -> str | None:
    """Why a resume cannot change the value at ``path`` (None: it applies it)."""
    root, rest = path[0], path[1:]
    if root in _SECTION_FIXED:
        return _SECTION_FIXED[root]
    if root == "trainer" and rest:
        return _TRAINER_FIXED.get(rest[0])
    if root == "dataloader" and rest:
        return _LOADER_FIXED.get(rest[0])
    if root == "optimizer" and rest[:1] == ("class",) or root == "optimizers" and len(rest) > 1 and rest[1] == "class":
        return "the checkpoint holds the state of the optimizer class as it was"
    if (
        root == "optimizers"
        and len(rest) > 1
        and (rest[1] == "models" or rest[1] == "param_groups" and "models" in rest[2:])
    ):
        return "the checkpoint's optimizer states belong to the parameters as they were grouped"
    if root in ("optimizer", "optimizers") and not rest or root == "optimizers" and len(rest) == 1:
        return "an optimizer can change its settings on resume, not appear or disappear"
    if root == "loss" and rest[:1] == ("inputs",) or root == "losses" and rest[1:2] == ("inputs",):
        return "a loss term reads the tensors it was wired to"
    if root == "losses" and len(rest) < 2:
        return "loss terms can change their arguments and weights on resume, not appear or disappear"
    if root == "stages" and (len(rest) < 2 or rest[1] not in ("epochs", "early_stopping", "until")):
        return "a stage's epochs and stop conditions can change on resume, not the rest of the stage plan"
    return None


def check_changes(changes: dict[tuple, dict[str, Any]], *, restart: bool = False) -> None:
    """A ConfigError naming every change a resume cannot apply (``restart``: one from the beginning, see the module docstring)."""
    problems = [
        Problem("command line", format_key(path), f"a resume cannot change it: {reason}")
        for path in changes
        if (reason := (_SECTION_FIXED["name"] if path[0] == "name" else None) if restart else refusal(path))
    ]
    if problems:
        raise ConfigError(problems)


def optimizer_of(path: tuple) -> tuple[str, bool] | None:
    """(optimizer name, whether the change is to its schedule) for a change under an optimizer or scheduler."""
    if path[0] == "optimizer":
        return "optimizer", False
    if path[0] == "scheduler":
        return "optimizer", True
    if path[0] == "optimizers" and len(path) > 1:
        return str(path[1]), len(path) > 2 and path[2] == "scheduler"
    return None


def hyperparameters(trainer) -> dict[str, list[dict[str, Any]]]:
    """Each optimizer's param group settings as built from the config (before a checkpoint overwrites them)."""
    return {
        name: [{key: value for key, value in group.items() if key != "params"} for group in spec.optimizer.param_groups]
        for name, spec in trainer.graph.optimizers.items()
    }


def apply_changes(
    trainer, changes: dict[tuple, dict[str, Any]], built: dict[str, list[dict[str, Any]]], schedules: set[str]
) -> None:
    """Put the changed optimizer and schedule settings into a trainer that has just loaded its checkpoint.

    ``built``: ``hyperparameters(trainer)`` taken before the load. ``schedules``:
    the optimizers that have a schedule in the new config. Settings read
    from the trainer's config at every use (epochs, callbacks' arguments)
    need nothing here.
    """
    from ..callbacks import LRScheduler

    touched = {found for path in changes if (found := optimizer_of(path))}
    settings = {name for name, schedule in touched if not schedule}
    rescheduled = {name for name, _ in touched}
    for name in settings:  # the new settings replace the checkpoint's; the moment estimates stay
        groups = trainer.graph.optimizers[name].optimizer.param_groups
        if len(groups) != len(built[name]):
            raise ConfigError(
                [
                    Problem(
                        "command line",
                        name,
                        f"the optimizer has {len(built[name])} parameter groups now, the checkpoint {len(groups)}",
                    )
                ]
            )
        for group, fresh in zip(groups, built[name]):
            group.pop("initial_lr", None)  # a schedule starts from the new base rate
            group.update(fresh)
    for name in rescheduled - schedules - settings:  # its schedule is gone: back to the base rate
        for group in trainer.graph.optimizers[name].optimizer.param_groups:
            group["lr"] = group.pop("initial_lr", group["lr"])
    only = next(iter(trainer.graph.optimizers)) if len(trainer.graph.optimizers) == 1 else None
    for callback in trainer.callbacks.callbacks:
        if isinstance(callback, LRScheduler) and (callback.optimizer_name or only) in rescheduled:
            callback.rebuild = True


def describe(changes: dict[tuple, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The changes as run.json records them: dotted key -> {"from": ..., "to": ...}."""
    return {format_key(path): change for path, change in changes.items()}
