"""Pipelines: a data source, the part of the graph it runs, its losses, its optimizer steps and its metrics.

A graph can serve several kinds of batch: labelled images train a
classifier through the encoder, unlabelled ones train a decoder through the
same encoder. Each kind is a ``Pipeline``; a stage's epoch interleaves the
batches of its pipelines (``interleave``).

Within one batch a pipeline makes one or more ``Update``s, in order: each
runs the nodes its loss terms need (nodes already run for this batch are
not run again), backpropagates the weighted sum of those terms and steps its
optimizers. One update (every loss, every optimizer over a trainable model
the pipeline runs) is the usual case; a GAN makes two: the discriminator's
(its loss reads the generator's output through a ``detach``) and then the
generator's, which runs the discriminator again with its new weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..names import PREDICTION_AND_TARGET
from .graph import Graph, GraphError, LossTerm, OptimizerSpec, batch_to_tensors


@dataclass
class Update:
    """Backpropagate ``losses`` (term names) and step ``optimizers`` (None: every one over a trainable model the pipeline runs)."""

    losses: Sequence[str]
    optimizers: Sequence[str] | None = None
    name: str | None = None


class UpdateStep(NamedTuple):
    """One update of a batch as the loop makes it: run ``nodes``, sum ``terms``, backpropagate, step ``optimizers``.

    A ``Plan`` holds one per update with no optimizers; ``Plan.for_stage``
    fills them in for a stage (its frozen models' optimizers left out).
    """

    update: Update
    nodes: list[int]  # graph node indices not run yet for this batch
    terms: list[LossTerm]
    optimizers: tuple[OptimizerSpec, ...] = ()


@dataclass
class Pipeline:
    """A data source and what the graph does with it.

    ``batch`` is the input adapter: a list of names for the parts of a tuple
    batch (default ``x``, ``y``), or a callable from the batch to a dict of
    named tensors. ``losses`` (term names; None: every term) and ``metrics``
    (name -> metric; ``metric_inputs`` says which two tensors each metric
    reads, default ``y_hat``, ``y``) decide which nodes run: those the
    losses and metrics need, unless ``nodes`` names them.
    """

    name: str = "main"
    train_data: Any = None
    val_data: Any = None
    test_data: Any = None
    losses: Sequence[str] | None = None
    metrics: Mapping[str, Any] | None = None
    metric_inputs: Mapping[str, Sequence[str]] = field(default_factory=dict)
    nodes: Sequence[str] | None = None
    updates: Sequence[Update] | None = None
    batch: Sequence[str] | Callable[[Any], dict] | None = None

    def data(self, split: str) -> Any:
        return {"train": self.train_data, "val": self.val_data, "test": self.test_data}[split]

    def tensors(self, batch: Any) -> dict[str, Any]:
        """The input adapter: a batch as named tensors."""
        if callable(self.batch):
            return dict(self.batch(batch))
        return batch_to_tensors(batch, self.batch)

    def batch_names(self) -> Sequence[str] | None:
        """The names a batch provides, when they can be known before training (from one sample of the training data)."""
        if self.batch is not None and not callable(self.batch):
            return list(self.batch)
        data = self.train_data if self.train_data is not None else self.val_data
        dataset = getattr(data, "dataset", data)
        names = getattr(dataset, "sample_names", None)
        if names is not None and not callable(self.batch):
            return list(names)
        try:
            return list(self.tensors(dataset[0]))
        except Exception:  # an iterable dataset, or one that needs a loader: the first batch will tell
            return None


class Plan:
    """A pipeline resolved against a graph: per update, the nodes to run and the terms to sum; then the metrics' nodes."""

    def __init__(self, pipeline: Pipeline, graph: Graph, batch: Sequence[str] | None):
        self.pipeline, self.graph = pipeline, graph
        terms = {term.name: term for term in graph.losses}
        at = ("pipelines", pipeline.name)
        names = list(terms) if pipeline.losses is None else list(pipeline.losses)
        for name in names:
            if name not in terms:
                raise GraphError(
                    f"pipeline {pipeline.name!r} names loss term {name!r}, which is not among {sorted(terms)}", at
                )
        updates = list(pipeline.updates) if pipeline.updates else [Update(names)]
        among = None
        if pipeline.nodes is not None:
            unknown = [n for n in pipeline.nodes if n not in graph.node_index]
            if unknown:
                raise GraphError(
                    f"pipeline {pipeline.name!r} names graph node(s) {unknown}, which are not among {list(graph.node_index)}",
                    at,
                )
            among = {graph.node_index[n] for n in pipeline.nodes}
        self.metric_inputs = {
            name: tuple(pipeline.metric_inputs.get(name, PREDICTION_AND_TARGET)) for name in pipeline.metrics or {}
        }
        done: set[int] = set()
        self.steps: list[UpdateStep] = []
        for update in updates:
            unknown = [n for n in update.losses if n not in terms]
            if unknown:
                raise GraphError(
                    f"an update of pipeline {pipeline.name!r} names loss term(s) {unknown}, which are not among {sorted(terms)}",
                    at,
                )
            chosen = [terms[n] for n in update.losses]
            nodes = [i for i in graph.needed([t for term in chosen for t in term.inputs], among) if i not in done]
            done.update(nodes)
            self.steps.append(UpdateStep(update, nodes, chosen))
        wanted = [t for inputs in self.metric_inputs.values() for t in inputs]
        rest = graph.needed(wanted, among) + ([i for i in graph.order if i in among] if among is not None else [])
        self.rest = sorted({i for i in rest if i not in done}, key=graph.order.index)
        self.nodes = sorted(done | set(self.rest), key=graph.order.index)
        self.terms = [term for step in self.steps for term in step.terms]
        self.log_terms = len(self.terms) > 1
        if batch is not None:
            graph.check_reads(
                self.nodes,
                self.terms,
                batch,
                who=pipeline.name,
                reads={f"metric {n!r}": i for n, i in self.metric_inputs.items()},
            )

    def models(self) -> set[str]:
        return {model for i in self.nodes if (model := self.graph.nodes[i].model) is not None}

    def for_stage(self, frozen: set[str]) -> list[UpdateStep]:
        """The updates with the optimizers each steps while ``frozen`` models are frozen."""
        optimizers = self.graph.optimizers
        return [
            step._replace(optimizers=tuple(optimizers[name] for name in self.optimizers_of(step.update, frozen)))
            for step in self.steps
        ]

    def optimizers_of(self, update: Update, frozen: set[str]) -> list[str]:
        """The optimizers an update steps: its own list, or every one over a model of this pipeline that is not frozen."""
        if update.optimizers is not None:
            return list(update.optimizers)
        trainable = self.models() - frozen
        return [name for name, spec in self.graph.optimizers.items() if trainable & set(spec.models)]
