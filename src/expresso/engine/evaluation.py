"""The passes that update nothing: validation during fit, ``validate()``, ``test()``, ``evaluate_train()`` and ``predict()``.

A mixin of ``Trainer`` (it reads the trainer's graph, plans, loaders and
metric sets): a pipeline is evaluated by running every node it trains and
reports through, summing its loss terms per update as training does, under
``torch.inference_mode`` and with every model in evaluation mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..names import PREDICTION
from .data import ResumableLoader, batch_limit
from .events import Event
from .pipeline import Plan
from .stages import Stage


class Evaluation:
    def _validate(self, stage: Stage) -> dict[str, float]:
        names = [name for name in stage.val if (name, "val") in self.loaders]
        if not names:
            return {}
        self.fire(Event.VALIDATION_START)
        values = {}
        for name in names:
            values.update(self._evaluate(name, "val"))
        if stage.early_stopping is not None:
            stage.early_stopping.on_validation_end(self.state)
        self.fire(Event.VALIDATION_END)
        return values

    def _forward_eval(self, plan: Plan, batch: Any) -> dict[str, Any]:
        """A batch's outputs and losses without updates: what validation, test and eval report."""
        tensors = self._tensors(plan, batch)
        if self.step_fn is not None:
            return self.step_fn(self.graph, tensors)
        self.graph.forward(tensors, plan.nodes)
        if plan.terms:
            total = None
            for _, _, terms in plan.steps:
                loss = self.graph.loss(tensors, terms, plan.log_terms)
                total = loss if total is None else total + loss
            tensors["loss"] = total
        return tensors

    def _evaluate(self, pipeline: str, split: str, loader: DataLoader | None = None) -> dict[str, float]:
        """``split``'s metrics of ``pipeline``, read from its loader (or ``loader``) without updates."""
        loader = loader if loader is not None else self.loaders[pipeline, split]
        metrics, state, plan = self.metric_sets[pipeline, split], self.state, self.plans[pipeline]
        limit = batch_limit(self.settings["limit_batches"], [loader], f"the {split} data")
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
                    state.outputs = self._forward_eval(plan, batch)
                    metrics.update(state.outputs)
                    self.fire(Event.EVAL_BATCH_END)
        finally:
            for model, mode in zip(self.graph.models.values(), was_training):
                model.train(mode)
        values = metrics.compute()
        state.metrics.update(values)
        return values

    def validate(self) -> dict[str, float]:
        """One pass over the validation data of every pipeline that has some; returns ``val/...`` metrics."""
        return self._standalone("validate", "val")

    def test(self) -> dict[str, float]:
        """One pass over the test data of every pipeline that has some; returns ``test/...`` metrics."""
        return self._standalone("test", "test")

    def evaluate_train(self) -> dict[str, float]:
        """One pass over the training data of every pipeline, as ``test()`` passes over the test data; returns ``train/...`` metrics.

        The models are in evaluation mode (no dropout) and nothing is updated.
        The data is read in order, whole (no shuffling, no dropped last
        batch) and in ``eval_batch_size`` batches: the training loader's
        order and batches are for fitting.
        """
        return self._standalone("evaluate_train", "train")

    def has_data(self, split: str) -> bool:
        return any(s == split for _, s in self.loaders)

    def _standalone(self, phase: str, split: str) -> dict[str, float]:
        if not self.has_data(split):
            raise ValueError(f"{phase}() needs {split}_data")
        self.state.phase = phase
        self.fire(Event.EVAL_START)
        values = {}
        for name in self.pipelines:
            if (name, split) in self.loaders:
                loader = self.loaders[name, split]
                if split == "train" and isinstance(
                    loader, ResumableLoader
                ):  # a loader given ready-made is read as given
                    loader = self._loader(loader.dataset, train=False)
                values.update(self._evaluate(name, split, loader))
        self.fire(Event.EVAL_END)
        return values

    @torch.inference_mode()
    def predict(
        self, data: Dataset | DataLoader, output: str = PREDICTION, pipeline: str | None = None
    ) -> torch.Tensor:
        """The named output of the graph for every sample (read as ``pipeline``'s batches), concatenated on the CPU."""
        loader = data if isinstance(data, DataLoader) else self._loader(data, train=False)
        plan = self.plans[pipeline or next(iter(self.plans))]
        if output not in self.graph.writer:
            raise ValueError(f"predict: no graph node writes {output!r}; the nodes write {sorted(self.graph.writer)}")
        nodes = self.graph.needed([output])
        self.state.phase = "predict"
        self.graph.train(False)
        self.fire(Event.EVAL_START)
        parts = []
        for batch in loader:
            self.state.outputs = self.graph.forward(self._tensors(plan, batch), nodes)
            parts.append(self.state.outputs[output].cpu())
            self.fire(Event.EVAL_BATCH_END)
        self.fire(Event.EVAL_END)
        return torch.cat(parts)
