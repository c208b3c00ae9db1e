"""What a checkpoint holds, and putting it back: the trainer's whole state, so a resumed run continues bit for bit.

Models, optimizers, every callback's state, each stage's own stop condition,
the RNG streams, the loop's position (stage, epoch, batch, step) and, while
an epoch is unfinished, the running sums of its training metrics (one set
per pipeline the stage trains). Each part keeps its own state
(``state_dict``/``load_state_dict``: the graph, the callbacks' dispatcher,
the stages, the metric sets, the loop's state); ``capture`` and ``restore``
only compose them, and decide whether a stage a stop condition ended stays
ended.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..runs.folder import CheckpointFolder
from .checkpoints import manifest
from .checkpoints.errors import CheckpointError
from .checkpoints.io import load_checkpoint, save_atomic
from .checkpoints.writer import detached
from .seeding import rng_state, set_rng_state


def prepare(trainer, path: Path, keep_previous: bool) -> Callable[[], None]:
    """The trainer's checkpoint now, as a write to run later (on the writer thread, checkpoints/writer.py).

    The state is captured and copied here (``detached``), so training may go
    on while the write runs: the file at ``path`` is replaced atomically and
    recorded in the folder's manifest (``keep_previous``: the replaced file
    stays as previous.ckpt).
    """
    payload = detached(capture(trainer))
    position = {k: payload["loop"][k] for k in ("step", "epoch", "stage")}
    previous = CheckpointFolder(path.parent).previous if keep_previous else None

    def write() -> None:
        entry = save_atomic(
            payload,
            path,
            before_replace=lambda entry: manifest.about_to_write(path.parent, {**entry, **position}),
            previous=previous,
        )
        manifest.written(path.parent, path.name, {**entry, **position}, rotated=keep_previous)

    return write


def read(trainer, path: Path | str, weights_only: bool) -> dict[str, Any]:
    """Load ``path`` into the trainer: the models, and unless ``weights_only`` everything else; returns the payload."""
    payload = load_checkpoint(Path(path), map_location=trainer.device)
    load_models(trainer.graph.models, payload, path)
    if not weights_only:
        restore(trainer, payload, path)
    return payload


def capture(trainer) -> dict[str, Any]:
    """The checkpoint payload of ``trainer`` now: the states its parts keep, composed."""
    state = trainer.state
    if trainer.stepper.pending:  # stepping.py: checkpoints lie between windows
        raise RuntimeError(
            "a checkpoint asked for inside a window of accumulated gradients would lose them on resume: "
            "save at a step's end (BATCH_END/BATCH_CHECKPOINT) or an epoch's"
        )
    between_epochs = state.epoch_finished or state.stage >= len(trainer.stages)  # past the last stage: the fit is over
    running = [] if between_epochs else trainer.stages[state.stage].trained
    graph, loop = trainer.graph.state_dict(), state.state_dict()
    return {
        "models": graph["models"],
        "optimizers": graph["optimizers"],
        "grad_scaler": trainer.stepper.state_dict(),
        "callbacks": trainer.callbacks.state_dict(),
        "stages": [stage.state_dict() for stage in trainer.stages],
        "rng": rng_state(),
        "loop": loop["loop"],
        "train_metrics": {name: trainer.metric_sets[name, "train"].state_dict() for name in running} or None,
        "metrics": loop["metrics"],
        "config": state.config,
    }


def stop_holds(trainer, state, stops: dict[str, str]) -> bool:
    """Whether a stage that ended early stays ended on resume: some condition that ended it still would.

    A stop nobody named (``StopTraining``) holds; a callback or stage
    condition this run no longer has, or one whose ``still_stops`` says no
    (EarlyStopping with a larger patience, an ``until`` that no longer
    holds), lifts.
    """
    if not stops:
        return True
    for key in stops:
        of_stages = [found for stage in trainer.stages if (found := stage.condition(key)) is not None]
        condition = of_stages[0] if of_stages else trainer.callbacks.find(key)
        if condition is not None and condition.still_stops(state):
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
    trainer.graph.load_optimizer_states(payload["optimizers"])
    trainer.stepper.load_state_dict(payload.get("grad_scaler"))
    trainer.callbacks.load_state_dict(payload["callbacks"])
    for stage, saved in zip(trainer.stages, payload.get("stages") or []):
        stage.load_state_dict(saved)
    state = trainer.state
    state.load_state_dict(payload)
    loop = payload["loop"]
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
