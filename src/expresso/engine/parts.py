"""What a Trainer is made of, from its Python API's arguments: the graph on its device, the pipelines, the metric sets.

The Trainer takes either one model (+ loss, optimizer) or a graph, either
data and metrics (the one pipeline of a plain run) or pipelines; these turn
either form into the one the loop works on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .graph import Graph
from .loaders import SPLITS
from .metrics import MetricSet, metric_prefix
from .pipeline import Pipeline, Plan


def placed_graph(
    device: torch.device, graph: Graph | None, model: nn.Module | None, loss: Callable | None, optimizer: Any
) -> Graph:
    """The graph to train, its models on ``device``: ``graph``, or the one-node graph of ``model``."""
    if graph is not None:
        for m in graph.models.values():
            m.to(device)
        return graph
    if model is None:
        raise TypeError("Trainer needs a model (with loss and optimizer) or a graph")
    model.to(device)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        optimizer = optimizer(model.parameters())
    return Graph.single(model, loss, optimizer)


def pipelines_of(pipelines: Sequence[Pipeline] | None, *data_and_metrics: Any) -> Sequence[Pipeline]:
    """``pipelines``, or the one pipeline of a plain run made of (train, val, test data, metrics)."""
    if pipelines is None:
        train_data, val_data, test_data, metrics = data_and_metrics
        return [Pipeline("main", train_data, val_data, test_data, metrics=metrics)]
    if any(x is not None for x in data_and_metrics):
        raise TypeError(
            "give data and metrics either to the Trainer (one pipeline) or to each of `pipelines`, not both"
        )
    return pipelines


def metric_sets_of(
    pipelines: Sequence[Pipeline], plans: Mapping[str, Plan], device: torch.device
) -> dict[tuple[str, str], MetricSet]:
    """A metric set per (pipeline, split); each split measures with its own copies (a metric keeps state)."""
    sets = {}
    for index, p in enumerate(pipelines):
        for split in SPLITS:
            given = p.metrics if split == "train" and index == 0 else _copies(p.metrics)
            prefix = metric_prefix(split, p.name, len(pipelines))
            sets[p.name, split] = MetricSet(given, prefix, device, plans[p.name].metric_inputs)
    return sets


def metric_names_of(metric_sets: Mapping[tuple[str, str], MetricSet], plans: Mapping[str, Plan]) -> set[str]:
    """Every key the pipelines can report: the loss, its logged terms, each metric."""
    names: set[str] = set()
    for (pipeline, _), metrics in metric_sets.items():
        plan = plans[pipeline]
        names |= metrics.names([term.name for term in plan.terms] if plan.log_terms else [])
    return names


def _copies(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Independent metric objects per split (a metric keeps state)."""
    if not metrics:
        return None if metrics is None else {}
    return {name: copy.deepcopy(metric) for name, metric in metrics.items()}
