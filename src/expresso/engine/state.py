"""The loop's state: a plain object every callback receives, not the trainer itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .graph import Graph


@dataclass
class State:
    """Where the loop is and what it works on.

    ``epoch`` is the 0-based index of the current epoch and ``batch_index``
    the number of batches of it already consumed; ``step`` counts optimizer
    steps over the whole fit. ``metrics`` holds the latest computed values
    (``train/loss``, ``val/acc``...), ``outputs`` the named tensors of the
    current batch. ``request_stop`` (or setting ``should_stop``) ends the
    current stage (in a plain run, the fit) after the current epoch;
    ``StopTraining`` ends the whole fit. ``stops`` says who asked and why:
    a resumed run asks each of them again (``Callback.still_stops``), so a
    run that early stopping ended trains on once its patience is raised. ``stage`` is the index of the current stage, ``stage_epoch``
    the epochs it has finished, ``stage_epochs`` its budget; ``pipeline`` names
    the pipeline of the current batch.
    """

    graph: Graph
    phase: str = "fit"  # fit | validate | test | evaluate_train | predict
    stage: int = 0
    stage_name: str = "main"
    stages: list[str] = field(default_factory=lambda: ["main"])
    stage_epoch: int = 0
    stage_epochs: int = 1
    pipeline: str = "main"
    epoch: int = 0
    batch_index: int = 0
    epoch_length: int | None = None  # batches in this epoch, when the loader knows
    step: int = 0
    max_epochs: int = 1
    max_steps: int | None = None
    epoch_finished: bool = False
    should_stop: bool = False
    stop_fit: bool = False
    stops: dict[str, str] = field(
        default_factory=dict
    )  # who asked to stop (a callback's state_key, "stage N until"...) -> why
    batch: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    run_dir: Path | None = None
    config: dict | None = None
    metric_names: set[str] = field(
        default_factory=set
    )  # every key the pipelines can report, measured or not this epoch
    extra: dict[str, Any] = field(default_factory=dict)  # room for callbacks to share things
    save_checkpoint: Callable[..., None] | None = None  # set by the Trainer: (path, then=None)
    wait_for_checkpoints: Callable[[], None] | None = None  # set by the Trainer: returns once every save is on disk

    @property
    def models(self):
        return self.graph.models

    @property
    def optimizers(self):
        return {name: spec.optimizer for name, spec in self.graph.optimizers.items()}

    def request_stop(self, by: str, reason: str) -> None:
        """End the current stage after this epoch, saying who asks (a callback's ``state_key``) and why."""
        self.should_stop = True
        self.stops.setdefault(by, reason)

    def position(self) -> dict[str, Any]:
        """Where a run resumed from this state continues (after a finished epoch: the next one).

        ``stage_stopped``: the stage ended early (a stop condition, named in
        ``stops``), so a resume starts the next stage unless every condition
        that stopped it has changed its mind; a stage that used up its epochs
        is not marked, so resuming with more epochs (``trainer.max_epochs=20``)
        trains on. ``stop_fit``: ``StopTraining`` ended the whole fit.
        """
        if not self.epoch_finished:
            return {
                "epoch": self.epoch,
                "batch_index": self.batch_index,
                "step": self.step,
                "stage": self.stage,
                "stage_epoch": self.stage_epoch,
                "stage_stopped": False,
                "stops": {},
                "stop_fit": False,
            }
        return {
            "epoch": self.epoch + 1,
            "batch_index": 0,
            "step": self.step,
            "stage": self.stage,
            "stage_epoch": self.stage_epoch + 1,
            "stage_stopped": self.should_stop,
            "stops": dict(self.stops) if self.should_stop else {},
            "stop_fit": self.stop_fit,
        }

    def describe_epoch(self) -> str:
        """``epoch 3/10``; in a staged fit ``stage 2/3 probe, epoch 1/5`` (counted from 1, as a person counts)."""
        epoch = f"epoch {self.stage_epoch + 1}/{self.stage_epochs}"
        if len(self.stages) == 1:
            return epoch
        return f"stage {min(self.stage, len(self.stages) - 1) + 1}/{len(self.stages)} {self.stage_name}, {epoch}"
