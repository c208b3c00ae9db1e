"""The loop's state: a plain object every callback receives, not the trainer itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Flag
from pathlib import Path
from typing import Any, NamedTuple

from .graph import Graph


class ImageFile(NamedTuple):
    """A picture a callback wrote for the loggers (``State.images``): its tag, the PNG's path, the step it shows.

    ``name`` is what the trackers list it under (``images/x_fake``); ``step``
    counts optimizer steps, as a metric's does, so a tracker shows it beside
    that step's values.
    """

    name: str
    path: Path
    step: int


class Stop(Flag):
    """Why the loop stops before its budget is spent: ``state.stop``, the one signal the loop reads.

    It gathers every reason asked so far (``Stop.STAGE | Stop.STEPS``);
    ``Stop.NONE`` (false) trains on. A stage ends after the epoch in which
    any reason was asked; ``STEPS`` and ``FIT`` end the fit too.
    """

    NONE = 0
    STAGE = 1  # a stop condition asked ``state.request_stop(by, why)``: the next stage starts after this epoch
    STEPS = 2  # ``max_steps`` optimizer steps are made: the epoch ends now, then the fit (after the epoch's end)
    FIT = 4  # ``StopTraining`` was raised: the epoch ends now, then the fit (after the epoch's end)
    ENDS_FIT = STEPS | FIT


@dataclass
class State:
    """Where the loop is and what it works on.

    ``epoch`` is the 0-based index of the current epoch and ``batch_index``
    the number of batches of it already consumed; ``step`` counts optimizer
    steps over the whole fit. ``metrics`` holds the latest computed values
    (``train/loss``, ``val/acc``...), ``outputs`` the named tensors of the
    current batch. ``stage`` is the index of the current stage,
    ``stage_epoch`` the epochs it has finished, ``stage_epochs`` its budget;
    ``pipeline`` names the pipeline of the current batch.

    ``stop`` says whether and why the loop stops early (``Stop``).
    ``request_stop(by, why)`` ends the current stage (in a plain run, the
    fit) after the current epoch, and ``stops`` keeps who asked and why: a
    resumed run asks each of them again (``Callback.still_stops``), so a run
    that early stopping ended trains on once its patience is raised.
    ``StopTraining`` ends the whole fit.

    ``images`` and ``texts`` are how a callback hands a file it wrote or a
    text it made to the loggers (``add_image``, ``add_text``): each logger
    sends what was added since it last looked, with the next row it sends
    (the epoch's metrics); the fit's start empties them.
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
    stop: Stop = Stop.NONE
    stops: dict[str, str] = field(
        default_factory=dict
    )  # who asked to end the stage (a callback's state_key, "stages.N.until"...) -> why
    batch: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    run_dir: Path | None = None
    config: dict | None = None
    metric_names: set[str] = field(
        default_factory=set
    )  # every key the pipelines can report, measured or not this epoch
    extra: dict[str, Any] = field(default_factory=dict)  # room for callbacks to share things
    # what callbacks hand to every logger this fit, sent with the next row (the loggers read them, nobody removes them)
    images: list[ImageFile] = field(default_factory=list)  # PNGs written into the run folder (ImageGrid)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (name, text): the model summary
    restored_from: Path | None = None  # the checkpoint last restored (resume, rollback): set before CHECKPOINT_LOAD
    save_checkpoint: Callable[..., None] | None = None  # set by the Trainer: (path, then=None, keep_previous=False)
    wait_for_checkpoints: Callable[[], None] | None = None  # set by the Trainer: returns once every save is on disk

    @property
    def models(self):
        return self.graph.models

    @property
    def optimizers(self):
        return {name: spec.optimizer for name, spec in self.graph.optimizers.items()}

    def request_stop(self, by: str, reason: str) -> None:
        """End the current stage after this epoch, saying who asks (a callback's ``state_key``) and why."""
        self.stop |= Stop.STAGE
        self.stops.setdefault(by, reason)

    def add_image(self, name: str, path: Path) -> None:
        """Hand a PNG written into the run folder to the loggers, at the current step (``images/x_fake``, its path)."""
        self.images.append(ImageFile(name, Path(path), self.step))

    def add_text(self, name: str, text: str) -> None:
        """Hand a named text (``model_summary``) to the loggers; each sends it once."""
        self.texts.append((name, text))

    def count_step(self) -> None:
        """One more optimizer step made; the one that reaches ``max_steps`` stops the fit (``Stop.STEPS``)."""
        self.step += 1
        self.stop |= self._out_of_steps()

    def _out_of_steps(self) -> Stop:
        return Stop.STEPS if self.max_steps is not None and self.step >= self.max_steps else Stop.NONE

    def stage_done(self) -> None:
        """The current stage is over (STAGE_END fired): the next one starts with no stop of its own."""
        self.stage += 1
        self.stage_epoch = 0
        self.stop &= ~Stop.STAGE
        self.stops = {}

    def epoch_done(self) -> None:
        """The current epoch is over (EPOCH_CHECKPOINT fired): the loop points at the next one."""
        self.epoch += 1
        self.stage_epoch += 1
        self.batch_index = 0
        self.epoch_finished = False

    def stage_over(self) -> bool:
        """Whether the current stage ended on its own: its epochs are done or a stop condition ended it."""
        return self.stage_epoch >= self.stage_epochs or bool(self.stop & Stop.STAGE)

    def position(self) -> dict[str, Any]:
        """Where a run resumed from this state continues (after a finished epoch: the next one).

        ``stage_stopped``: the stage ended early (a stop condition, named in
        ``stops``, or ``StopTraining``), so a resume starts the next stage
        unless every condition that stopped it has changed its mind; a stage
        that used up its epochs is not marked, so resuming with more epochs
        (``trainer.max_epochs=20``) trains on. ``stop_fit``:
        ``StopTraining`` ended the whole fit.
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
        stopped = bool(self.stop & (Stop.STAGE | Stop.FIT))
        return {
            "epoch": self.epoch + 1,
            "batch_index": 0,
            "step": self.step,
            "stage": self.stage,
            "stage_epoch": self.stage_epoch + 1,
            "stage_stopped": stopped,
            "stops": dict(self.stops) if stopped else {},
            "stop_fit": bool(self.stop & Stop.FIT),
        }

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the state: the position (``loop``) and the latest values (``metrics``)."""
        return {"loop": self.position(), "metrics": dict(self.metrics)}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Back to a checkpoint's position, with no stop but ``StopTraining``'s and a spent ``max_steps``.

        Whether a stage a stop condition ended stays ended is the caller's to
        decide (``loop["stage_stopped"]``): it asks the conditions again.
        """
        loop = saved["loop"]
        self.epoch, self.batch_index, self.step = loop["epoch"], loop["batch_index"], loop["step"]
        self.stage, self.stage_epoch = loop.get("stage", 0), loop.get("stage_epoch", loop["epoch"])
        self.metrics = dict(saved["metrics"])
        self.stops = {}
        self.stop = (Stop.FIT if loop.get("stop_fit") else Stop.NONE) | self._out_of_steps()

    def describe_epoch(self) -> str:
        """``epoch 3/10``; in a staged fit ``stage 2/3 probe, epoch 1/5`` (counted from 1, as a person counts)."""
        epoch = f"epoch {self.stage_epoch + 1}/{self.stage_epochs}"
        if len(self.stages) == 1:
            return epoch
        return f"stage {min(self.stage, len(self.stages) - 1) + 1}/{len(self.stages)} {self.stage_name}, {epoch}"
