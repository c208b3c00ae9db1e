"""What a checkpoint holds, and putting it back: the trainer's whole state, so a resumed run continues bit for bit.

Models, optimizers, every callback's state, each stage's own stop condition,
the RNG streams, the loop's position (stage, epoch, batch, step) and, while
an epoch is unfinished, the running sums of its training metrics (one set
per pipeline the stage trains).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runs.folder import CheckpointFolder
from .checkpoints import manifest
from .checkpoints.errors import CheckpointError
from .checkpoints.io import load_checkpoint, save_atomic
from .checkpoints.optimizer_state import state_problem
from .seeding import rng_state, set_rng_state


def write(trainer, path: Path, keep_previous: bool) -> None:
    """The trainer's checkpoint at ``path``, atomically, recorded in the folder's manifest (``keep_previous``: the replaced file stays as previous.ckpt)."""
    payload = capture(trainer)
    position = {k: payload["loop"][k] for k in ("step", "epoch", "stage")}
    entry = save_atomic(
        payload,
        path,
        before_replace=lambda entry: manifest.about_to_write(path.parent, {**entry, **position}),
        previous=CheckpointFolder(path.parent).previous if keep_previous else None,
    )
    manifest.written(path.parent, path.name, {**entry, **position}, rotated=keep_previous)


def read(trainer, path: Path | str, weights_only: bool) -> dict[str, Any]:
    """Load ``path`` into the trainer: the models, and unless ``weights_only`` everything else; returns the payload."""
    payload = load_checkpoint(path, map_location=trainer.device)
    load_models(trainer.graph.models, payload, path)
    if not weights_only:
        restore(trainer, payload, path)
    return payload


def capture(trainer) -> dict[str, Any]:
    """The checkpoint payload of ``trainer`` now."""
    state = trainer.state
    between_epochs = state.epoch_finished or state.stage >= len(trainer.stages)  # past the last stage: the fit is over
    running = [] if between_epochs else trainer.stages[state.stage].train
    return {
        "models": {name: model.state_dict() for name, model in trainer.graph.models.items()},
        "optimizers": {name: spec.optimizer.state_dict() for name, spec in trainer.graph.optimizers.items()},
        "grad_scaler": None,
        "callbacks": trainer.callbacks.state_dict(),
        "stages": [
            stage.early_stopping.state_dict() if stage.early_stopping is not None else None for stage in trainer.stages
        ],
        "rng": rng_state(),
        "loop": state.position(),
        "train_metrics": {name: trainer.metric_sets[name, "train"].state_dict() for name in running} or None,
        "metrics": dict(state.metrics),
        "config": state.config,
    }


def stop_holds(trainer, state, stops: dict[str, str]) -> bool:
    """Whether a stage that ended early stays ended on resume: some condition that ended it still would.

    A stop nobody named (``should_stop`` set directly) holds; a callback this
    run no longer has, or one whose ``still_stops`` says no (EarlyStopping
    with a larger patience), or a stage condition that changed its mind, lifts.
    """
    if not stops:
        return True
    conditions = {
        key: value for index, stage in enumerate(trainer.stages) for key, value in stage.stop_keys(index).items()
    }
    for key in stops:
        if key in conditions:
            condition = conditions[key]
            if key.endswith(".until"):
                holds = condition is not None and bool(condition(state))
            else:
                holds = condition is not None and condition.still_stops(state)
        else:
            callback = trainer.callbacks.find(key)
            holds = callback is not None and callback.still_stops(state)
        if holds:
            return True
    return False


def load_models(models: dict[str, Any], payload: dict[str, Any], path: Path | str) -> None:
    """The weights of every model, strictly; a CheckpointError naming ``path`` and the model otherwise."""
    saved = payload.get("models") or {}
    for name, model in models.items():
        if name not in saved:
            raise CheckpointError(
                f"{path}: the checkpoint has no weights for model {name!r} (it has {sorted(map(str, saved))})"
            )
        try:
            model.load_state_dict(saved[name])
        except Exception as exc:  # noqa: BLE001 - a state dict from a damaged or foreign file
            raise CheckpointError(
                f"{path}: model {name!r} does not fit the checkpoint's weights ({str(exc).strip().splitlines()[0]})"
            ) from None


def restore(trainer, payload: dict[str, Any], path: Path | str) -> None:
    """Everything but the models (``load_models``) back into ``trainer``; whatever the payload breaks is a CheckpointError."""
    try:
        _restore(trainer, payload)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a damaged payload breaks (an RNG state out of range...), it is the file's fault
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"{path}: the checkpoint does not fit this run ({type(exc).__name__}: {detail})"
        ) from None


def _restore(trainer, payload: dict[str, Any]) -> None:
    for name, spec in trainer.graph.optimizers.items():
        problem = state_problem(spec.optimizer, payload["optimizers"][name])
        if problem:
            raise ValueError(f"optimizer {name!r}: {problem}")
        spec.optimizer.load_state_dict(payload["optimizers"][name])
    trainer.callbacks.load_state_dict(payload["callbacks"])
    for stage, saved in zip(trainer.stages, payload.get("stages") or []):
        if stage.early_stopping is not None and saved is not None:
            stage.early_stopping.load_state_dict(saved)
    state, loop = trainer.state, payload["loop"]
    state.epoch, state.batch_index, state.step = loop["epoch"], loop["batch_index"], loop["step"]
    state.stage, state.stage_epoch = loop.get("stage", 0), loop.get("stage_epoch", loop["epoch"])
    state.metrics = dict(payload["metrics"])
    state.should_stop, state.stops, state.stop_fit = False, {}, bool(loop.get("stop_fit"))
    if loop.get("stage_stopped"):
        stops = dict(loop.get("stops") or {})
        if stop_holds(trainer, state, stops):  # a stop condition ended that stage: go on with the next
            state.stage, state.stage_epoch = state.stage + 1, 0
            state.stops = stops  # the reason stays known (expresso resume says why nothing is left to train)
        else:
            state.extra["lifted_stops"] = stops
    if state.stage < len(trainer.stages):
        trainer.enter_stage(trainer.stages[state.stage])
    saved_metrics = payload["train_metrics"]
    if saved_metrics is not None and "sums" in saved_metrics:  # written before pipelines existed: the one pipeline's
        saved_metrics = {next(iter(trainer.pipelines)): saved_metrics}
    if saved_metrics and state.batch_index > 0:
        for name, saved in saved_metrics.items():
            trainer.metric_sets[name, "train"].load_state_dict(saved)
    set_rng_state(payload["rng"])
