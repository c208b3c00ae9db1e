"""What a checkpoint holds, and putting it back: the trainer's whole state, so a resumed run continues bit for bit.

Models, optimizers, every callback's state, each stage's own stop condition,
the RNG streams, the loop's position (stage, epoch, batch, step) and, while
an epoch is unfinished, the running sums of its training metrics (one set
per pipeline the stage trains).
"""

from __future__ import annotations

from typing import Any

from .optimizer_state import state_problem
from .seeding import rng_state, set_rng_state


def capture(trainer) -> dict[str, Any]:
    """The checkpoint payload of ``trainer`` now."""
    state = trainer.state
    running = [] if state.epoch_finished else trainer.stages[state.stage].train
    return {
        "models": {name: model.state_dict() for name, model in trainer.graph.models.items()},
        "optimizers": {name: spec.optimizer.state_dict() for name, spec in trainer.graph.optimizers.items()},
        "grad_scaler": None,
        "callbacks": trainer.callbacks.state_dict(),
        "stages": [stage.early_stopping.state_dict() if stage.early_stopping is not None else None for stage in trainer.stages],
        "rng": rng_state(),
        "loop": state.position(),
        "train_metrics": {name: trainer.metric_sets[name, "train"].state_dict() for name in running} or None,
        "metrics": dict(state.metrics),
        "config": state.config,
    }


def restore(trainer, payload: dict[str, Any]) -> None:
    """Everything but the models (loaded first, also alone for ``init_from``) back into ``trainer``."""
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
    if loop.get("stage_stopped"):  # a stop condition ended that stage: go on with the next
        state.stage, state.stage_epoch = state.stage + 1, 0
    if state.stage < len(trainer.stages):
        trainer.enter_stage(trainer.stages[state.stage])
    state.metrics = dict(payload["metrics"])
    saved_metrics = payload["train_metrics"]
    if saved_metrics is not None and "sums" in saved_metrics:  # written before pipelines existed: the one pipeline's
        saved_metrics = {next(iter(trainer.pipelines)): saved_metrics}
    if saved_metrics and state.batch_index > 0:
        for name, saved in saved_metrics.items():
            trainer.metric_sets[name, "train"].load_state_dict(saved)
    set_rng_state(payload["rng"])
