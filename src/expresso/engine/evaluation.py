"""The passes that update nothing: validation during fit, ``validate()``, ``test()``, ``evaluate_train()`` and ``predict()``.

A pipeline is evaluated by running every node it trains and reports
through, summing its loss terms per update as training does, under
``torch.inference_mode`` and with every model in evaluation mode. The
``Evaluation`` receives what it works on when the trainer builds it, and
reads nothing else of the trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..names import PREDICTION
from .data import batch_limit
from .events import Event
from .graph import Graph
from .loaders import Loaders
from .metrics import MetricSet
from .pipeline import Plan
from .stages import Stage
from .state import State

Step = Callable[[Graph, dict], dict]


class Evaluation:
    """Evaluates the graph's pipelines on their loaders into their metric sets, firing the evaluation events.

    ``fire`` fires an event to the run's callbacks (and, during a stage, to
    its stop conditions); ``step`` is the config's own step (None: the
    graph's forward and losses); ``limit_batches`` is ``trainer.limit_batches``;
    ``autocast()`` is the context the forward and losses run in (trainer.precision's).
    """

    def __init__(
        self,
        *,
        graph: Graph,
        plans: Mapping[str, Plan],
        loaders: Loaders,
        metric_sets: Mapping[tuple[str, str], MetricSet],
        state: State,
        fire: Callable[[Event], None],
        step: Step | None = None,
        limit_batches: int | float | None = None,
        autocast: Callable[[], AbstractContextManager] = nullcontext,
    ):
        self.graph, self.plans, self.loaders, self.metric_sets = graph, plans, loaders, metric_sets
        self.state, self.fire, self.step, self.limit_batches = state, fire, step, limit_batches
        self.autocast = autocast

    def validate_stage(self, stage: Stage) -> dict[str, float]:
        """Validation during fit: the pipelines ``stage`` validates that have validation data."""
        names = [name for name in stage.validated if (name, "val") in self.loaders]
        if not names:
            return {}
        self.fire(Event.VALIDATION_START)
        values = {}
        for name in names:
            values.update(self.evaluate(name, "val", self.loaders[name, "val"]))
        self.fire(Event.VALIDATION_END)
        return values

    def run(self, phase: str, split: str) -> dict[str, float]:
        """One pass over ``split`` of every pipeline that has it, in its own ``phase``; returns the metrics."""
        if not self.loaders.has(split):
            raise ValueError(f"{phase}() needs {split}_data")
        self.state.phase = phase
        self.fire(Event.EVAL_START)
        values = {}
        for name in self.plans:
            if (name, split) in self.loaders:
                values.update(self.evaluate(name, split, self.loaders.for_evaluation(name, split)))
        self.fire(Event.EVAL_END)
        return values

    def evaluate(self, pipeline: str, split: str, loader: DataLoader) -> dict[str, float]:
        """``split``'s metrics of ``pipeline``, read from ``loader`` without updates."""
        metrics, state, plan = self.metric_sets[pipeline, split], self.state, self.plans[pipeline]
        limit = batch_limit(self.limit_batches, [loader], f"the {split} data")
        metrics.reset()
        was_training = [m.training for m in self.graph.models.values()]
        self.graph.train(False)
        state.pipeline = pipeline
        try:
            with torch.inference_mode():
                for index, batch in enumerate(loader):
                    if limit is not None and index >= limit:
                        break
                    state.batch = batch
                    with self.autocast():
                        state.outputs = self.forward(plan, batch)
                    metrics.update(state.outputs)
                    self.fire(Event.EVAL_BATCH_END)
        finally:
            for model, mode in zip(self.graph.models.values(), was_training):
                model.train(mode)
        values = metrics.compute()
        state.metrics.update(values)
        return values

    def forward(self, plan: Plan, batch: Any) -> dict[str, Any]:
        """A batch's outputs and losses without updates: what validation, test and eval report."""
        tensors = self.loaders.tensors(plan, batch)
        if self.step is not None:
            return self.step(self.graph, tensors)
        self.graph.forward(tensors, plan.nodes)
        if plan.terms:
            total = None
            for step in plan.steps:
                loss = self.graph.loss(tensors, step.terms, plan.log_terms)
                total = loss if total is None else total + loss
            tensors["loss"] = total
        return tensors

    @torch.inference_mode()
    def predict(
        self, data: Dataset | DataLoader, output: str = PREDICTION, pipeline: str | None = None
    ) -> torch.Tensor:
        """The named output of the graph for every sample (read as ``pipeline``'s batches), concatenated on the CPU."""
        loader = data if isinstance(data, DataLoader) else self.loaders.build(data, train=False)
        if loader is None:
            raise ValueError("predict: no data to predict (received None)")
        plan = self.plans[pipeline or next(iter(self.plans))]
        if output not in self.graph.writer:
            raise ValueError(f"predict: no graph node writes {output!r}; the nodes write {sorted(self.graph.writer)}")
        nodes = self.graph.needed([output])
        self.state.phase = "predict"
        self.graph.train(False)
        self.fire(Event.EVAL_START)
        parts = []
        for batch in loader:
            self.state.outputs = self.graph.forward(self.loaders.tensors(plan, batch), nodes)
            parts.append(self.state.outputs[output].cpu())
            self.fire(Event.EVAL_BATCH_END)
        self.fire(Event.EVAL_END)
        return torch.cat(parts)
