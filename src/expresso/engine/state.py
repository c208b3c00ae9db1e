"""The loop's state: a plain object every callback receives, not the trainer itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .graph import Graph


@dataclass
class State:
    """Where the loop is and what it works on.

    ``epoch`` is the 0-based index of the current epoch and ``batch_index``
    the number of batches of it already consumed; ``step`` counts optimizer
    steps over the whole fit. ``metrics`` holds the latest computed values
    (``train/loss``, ``val/acc``...), ``outputs`` the named tensors of the
    current batch. Setting ``should_stop`` ends the fit after the current
    epoch (what ``StopTraining`` does at once).
    """

    graph: Graph
    phase: str = "fit"  # fit | validate | test | predict
    stage: int = 0
    epoch: int = 0
    batch_index: int = 0
    epoch_length: int | None = None  # batches in this epoch, when the loader knows
    step: int = 0
    max_epochs: int = 1
    max_steps: int | None = None
    epoch_finished: bool = False
    should_stop: bool = False
    batch: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    run_dir: Path | None = None
    config: dict | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # room for callbacks to share things
    save_checkpoint: Callable[..., None] | None = None  # set by the Trainer: (path, then=None)
    wait_for_checkpoints: Callable[[], None] | None = None  # set by the Trainer: returns once every save is on disk

    @property
    def models(self):
        return self.graph.models

    @property
    def optimizers(self):
        return {name: spec.optimizer for name, spec in self.graph.optimizers.items()}

    def position(self) -> dict[str, int]:
        """Where a run resumed from this state continues."""
        if self.epoch_finished:
            return {"epoch": self.epoch + 1, "batch_index": 0, "step": self.step}
        return {"epoch": self.epoch, "batch_index": self.batch_index, "step": self.step}
