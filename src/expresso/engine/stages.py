"""Stages: training in steps, e.g. pretrain an autoencoder, train a classifier on the frozen encoder, fine-tune all.

A stage names the pipelines it trains and validates, the models it freezes
and when it ends: after ``epochs`` (default ``trainer.max_epochs``), or
earlier when its ``early_stopping`` (an ``EarlyStopping`` callback that
watches this stage only) or its ``until(state)`` says so. A plain run is one
stage over every pipeline.

A frozen model's parameters stop requiring gradients and the model stays in
evaluation mode (no dropout, no BatchNorm statistics updates), so its
weights and buffers are exactly what the stage found; the flags come back
when the stage ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .graph import Graph, GraphError


@dataclass
class Stage:
    name: str = "main"
    train: Sequence[str] | None = None  # pipeline names; None: every pipeline
    val: Sequence[str] | None = None  # None: the trained pipelines that have validation data
    frozen: Sequence[str] = ()
    epochs: int | None = None
    early_stopping: Any = None  # an expresso.callbacks.EarlyStopping for this stage only
    until: Callable[[Any], bool] | None = None
    interleave: str | Mapping[str, int] = "round_robin"
    requires_grad: dict[str, list[bool]] = field(default_factory=dict, repr=False)  # saved flags while frozen

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
        if self.early_stopping is not None:  # its stop requests (state.stops) name the config entry
            self.early_stopping.stop_key = f"stages.{index}.early_stopping"

    def stop_keys(self, index: int) -> dict[str, Any]:
        """The stop conditions of this stage by the key their stop requests carry: asked again on resume."""
        return {f"stages.{index}.early_stopping": self.early_stopping, f"stages.{index}.until": self.until}

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


def nothing_left(state: Any, epochs: Sequence[int], settings: Mapping[str, Any]) -> tuple[str, str] | None:
    """Why a fit from ``state``'s position would train no epoch (``epochs``: each stage's budget); None: it would.

    Asked by ``expresso resume`` before it writes anything: a resume that
    cannot train says what would have to change instead of exiting 0.
    """
    if state.stop_fit:
        return "stopped", "StopTraining ended it"
    if any(
        budget - (state.stage_epoch if index == state.stage else 0) > 0
        for index, budget in enumerate(epochs)
        if index >= state.stage
    ):
        return None
    if state.stops:
        return "stopped", "; ".join(f"{by} stopped it: {why}" for by, why in state.stops.items())
    limit = f", limit_epochs={settings['limit_epochs']}" if settings["limit_epochs"] else ""
    return "epochs", f"it has trained every epoch its stages allow (max_epochs={settings['max_epochs']}{limit})"
