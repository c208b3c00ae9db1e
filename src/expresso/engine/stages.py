"""Stages: training in steps, e.g. pretrain an autoencoder, train a classifier on the frozen encoder, fine-tune all.

A stage names the pipelines it trains and validates, the models it freezes
and when it ends: after ``epochs`` (default ``trainer.max_epochs``), or
earlier when one of its stop conditions says so: its ``early_stopping`` (a
callback, ``expresso.callbacks.EarlyStopping``, that watches this stage
only) or its ``until(state)``. A plain run is one stage over every
pipeline.

The stop conditions are callbacks the loop fires while their stage trains
(from STAGE_START to its last epoch's end), before the run's own callbacks,
so a stop they ask for at EPOCH_END is in that epoch's checkpoint; they ask
``state.request_stop(stop_key, why)`` with the key of their config entry
(``stages.N.early_stopping``, ``stages.N.until``), and a resume asks their
``still_stops(state)`` again. The loop knows them only as callbacks.

A frozen model's parameters stop requiring gradients and the model stays in
evaluation mode (no dropout, no BatchNorm statistics updates), so its
weights and buffers are exactly what the stage found; the flags come back
when the stage ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .callback import Callback, Dispatcher
from .graph import Graph, GraphError
from .state import State, Stop


class Until(Callback):
    """A stage's ``until(state)`` as a stop condition: asked at each epoch end of its stage."""

    phases = ("fit",)

    def __init__(self, condition: Callable[[State], bool], stop_key: str):
        self.condition, self.stop_key = condition, stop_key

    def on_epoch_end(self, state: State) -> None:
        if self.condition(state):
            state.request_stop(self.stop_key or self.state_key, "its until condition held")

    def still_stops(self, state: State) -> bool:
        return bool(self.condition(state))


@dataclass
class Stage:
    """One step of the training: which pipelines it trains and validates, what it freezes, when it ends."""

    name: str = "main"
    train: Sequence[str] | None = None  # pipeline names; None: every pipeline
    val: Sequence[str] | None = None  # None: the trained pipelines that have validation data
    frozen: Sequence[str] = ()
    epochs: int | None = None
    early_stopping: Callback | None = None  # a stop condition for this stage only (expresso.callbacks.EarlyStopping)
    until: Callable[[State], bool] | None = None
    interleave: str | Mapping[str, int] = "round_robin"
    requires_grad: dict[str, list[bool]] = field(default_factory=dict, repr=False)  # saved flags while frozen
    conditions: Dispatcher = field(
        default_factory=lambda: Dispatcher([]), init=False, repr=False, compare=False
    )  # set by resolve

    @property
    def trained(self) -> Sequence[str]:
        """The pipelines this stage trains, the default filled in (by ``resolve``)."""
        assert self.train is not None, "Stage.resolve() fills in the trained pipelines"
        return self.train

    @property
    def validated(self) -> Sequence[str]:
        """The pipelines this stage validates, the default filled in (by ``resolve``)."""
        assert self.val is not None, "Stage.resolve() fills in the validated pipelines"
        return self.val

    def resolve(self, pipelines: Mapping[str, Any], graph: Graph, index: int) -> None:
        """Fill the defaults and check every name against the pipelines and models."""
        at = ("stages", index)
        self.train = list(pipelines) if self.train is None else list(self.train)
        for key in ("train", "val"):
            for name in getattr(self, key) or []:
                if name not in pipelines:
                    raise GraphError(
                        f"stage {self.name!r} {'trains' if key == 'train' else 'validates'} pipeline {name!r}, which is not among {list(pipelines)}",
                        at,
                    )
        if self.val is None:
            self.val = [name for name in self.train if pipelines[name].val_data is not None]
        for name in self.frozen:
            if name not in graph.models:
                raise GraphError(
                    f"stage {self.name!r} freezes model {name!r}, which is not among {sorted(graph.models)}", at
                )
        if not self.train:
            raise GraphError(f"stage {self.name!r} trains no pipeline", at)
        if isinstance(self.interleave, Mapping):
            unknown = [name for name in self.interleave if name not in self.train]
            if unknown or any(not isinstance(n, int) or n < 1 for n in self.interleave.values()):
                raise GraphError(
                    f"stage {self.name!r}: interleave ratios must give each trained pipeline {self.train} a count >= 1",
                    at,
                )
        elif self.interleave not in ("round_robin", "sequential"):
            raise GraphError(
                f"stage {self.name!r}: interleave must be round_robin, sequential or a mapping of pipeline: batches", at
            )
        conditions = []
        if self.early_stopping is not None:  # its stop requests (state.stops) name the config entry
            self.early_stopping.stop_key = f"stages.{index}.early_stopping"
            conditions.append(self.early_stopping)
        if self.until is not None:
            until = Until(self.until, f"stages.{index}.until")
            until.order = max((c.order for c in conditions), default=0)  # asked after the early stopping
            conditions.append(until)
        self.conditions = Dispatcher(conditions)

    def condition(self, stop_key: str) -> Callback | None:
        """The stop condition whose stop requests carry ``stop_key``, if this stage has it."""
        return next((c for c in self.conditions.callbacks if c.stop_key == stop_key), None)

    def state_dict(self) -> dict[str, Any] | None:
        """What a checkpoint keeps of this stage: its early stopping's state (None: nothing to keep)."""
        return self.early_stopping.state_dict() if self.early_stopping is not None else None

    def load_state_dict(self, saved: dict[str, Any] | None) -> None:
        if self.early_stopping is not None and saved is not None:
            self.early_stopping.load_state_dict(saved)

    def freeze(self, graph: Graph) -> None:
        for name in self.frozen:
            params = list(graph.models[name].parameters())
            self.requires_grad[name] = [p.requires_grad for p in params]
            for p in params:
                p.requires_grad_(False)
        graph.frozen = set(self.frozen)

    def unfreeze(self, graph: Graph) -> None:
        for name, flags in self.requires_grad.items():
            for p, flag in zip(graph.models[name].parameters(), flags):
                p.requires_grad_(flag)
        self.requires_grad.clear()
        graph.frozen = set()


def nothing_left(
    state: State, epochs: Sequence[int], max_epochs: int, limit_epochs: int | None
) -> tuple[str, str] | None:
    """Why a fit from ``state``'s position would train no epoch (``epochs``: each stage's budget); None: it would.

    Asked by ``expresso resume`` before it writes anything: a resume that
    cannot train says what would have to change instead of exiting 0.
    Returns (``steps``, ``stopped`` or ``epochs``, why).
    """
    if state.stop & Stop.STEPS:
        return "steps", f"it has made its max_steps={state.max_steps} optimizer steps"
    if state.stop & Stop.FIT:
        return "stopped", "StopTraining ended it"
    if any(
        budget - (state.stage_epoch if index == state.stage else 0) > 0
        for index, budget in enumerate(epochs)
        if index >= state.stage
    ):
        return None
    if state.stops:
        return "stopped", "; ".join(f"{by} stopped it: {why}" for by, why in state.stops.items())
    limit = f", limit_epochs={limit_epochs}" if limit_epochs else ""
    return "epochs", f"it has trained every epoch its stages allow (max_epochs={max_epochs}{limit})"
