"""A graph of models wired by named tensors: the one engine behind every config.

A batch becomes a dict of named tensors (``x``, ``y`` for an ``(input,
target)`` pair; a dict batch keeps its keys). Nodes run in order; each calls
its model on the tensors it names and stores its outputs under new names.
Loss terms read named tensors and carry a weight; their weighted sum is the
``loss``. Each optimizer updates the parameters of the models it names.

The plain config (``model``, ``loss``, ``optimizer``) is the one-node case::

    x --[model]--> y_hat ;  loss = CrossEntropy(y_hat, y)

An encoder feeding two heads with two optimizers is the same code with
more nodes (see tests/unit/engine/test_graph.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn


@dataclass
class Node:
    model: str
    inputs: Sequence[str] = ("x",)
    outputs: Sequence[str] = ("y_hat",)


@dataclass
class LossTerm:
    name: str
    fn: Callable[..., Tensor]
    inputs: Sequence[str] = ("y_hat", "y")
    weight: float = 1.0


@dataclass
class OptimizerSpec:
    optimizer: torch.optim.Optimizer
    models: Sequence[str]


def batch_to_tensors(batch: Any) -> dict[str, Any]:
    """Name a batch's parts: ``(x, y)`` -> {"x", "y"}; ``(x,)`` -> {"x"}; dicts keep their keys."""
    if isinstance(batch, Mapping):
        return dict(batch)
    if isinstance(batch, (tuple, list)):
        if len(batch) == 2:
            return {"x": batch[0], "y": batch[1]}
        if len(batch) == 1:
            return {"x": batch[0]}
        raise ValueError(f"a batch of {len(batch)} parts needs names: return a dict from the dataset")
    return {"x": batch}


@dataclass
class Graph:
    models: dict[str, nn.Module]
    nodes: list[Node]
    losses: list[LossTerm]
    optimizers: dict[str, OptimizerSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()
        self.callables: dict[str, Callable] = dict(self.models)  # what forward() calls: the models, or their compiled forms

    def compile(self, mode: str | None = None) -> None:
        """Run each model through ``torch.compile``; ``models`` keep the originals (checkpoints stay plain state dicts)."""
        self.callables = {name: torch.compile(model, mode=mode) for name, model in self.models.items()}

    @classmethod
    def single(cls, model: nn.Module, loss: Callable | None, optimizer: torch.optim.Optimizer | None) -> "Graph":
        """The one-node graph of the plain config."""
        return cls(
            models={"model": model},
            nodes=[Node("model")],
            losses=[LossTerm("loss", loss)] if loss is not None else [],
            optimizers={"optimizer": OptimizerSpec(optimizer, ["model"])} if optimizer is not None else {},
        )

    def validate(self) -> None:
        """Fail before training on a wiring mistake, naming the node and the tensor."""
        written: dict[str, str] = {}
        for i, node in enumerate(self.nodes):
            if node.model not in self.models:
                raise ValueError(f"graph node {i} names model {node.model!r}, which is not among {sorted(self.models)}")
            for name in node.outputs:
                if name in written:
                    raise ValueError(f"graph node {i} ({node.model}) writes tensor {name!r}, already written by {written[name]}")
                written[name] = node.model
        for spec_name, spec in self.optimizers.items():
            unknown = [m for m in spec.models if m not in self.models]
            if unknown:
                raise ValueError(f"optimizer {spec_name!r} names unknown model(s) {unknown}")

    def forward(self, tensors: dict[str, Any]) -> dict[str, Any]:
        for node in self.nodes:
            try:
                args = [tensors[name] for name in node.inputs]
            except KeyError as exc:
                raise KeyError(f"graph node {node.model!r} reads tensor {exc.args[0]!r}, which is not in {sorted(tensors)}") from None
            out = self.callables[node.model](*args)
            if len(node.outputs) == 1:
                tensors[node.outputs[0]] = out
            else:
                tensors.update(zip(node.outputs, out))
        return tensors

    def loss(self, tensors: dict[str, Any]) -> Tensor:
        """Weighted sum of the loss terms; each term is also stored as ``loss/<name>``."""
        total = None
        for term in self.losses:
            value = term.fn(*(tensors[name] for name in term.inputs))
            if len(self.losses) > 1:
                tensors[f"loss/{term.name}"] = value.detach()
            weighted = value if term.weight == 1.0 else term.weight * value
            total = weighted if total is None else total + weighted
        tensors["loss"] = total
        return total

    def train(self, mode: bool = True) -> None:
        for model in self.models.values():
            model.train(mode)

    def parameters_of(self, names: Sequence[str]) -> list[nn.Parameter]:
        return [p for name in names for p in self.models[name].parameters()]


def default_step(graph: Graph, tensors: dict[str, Any]) -> dict[str, Any]:
    """Forward every node, then the losses. A config's ``step`` replaces this function."""
    graph.forward(tensors)
    if graph.losses:
        graph.loss(tensors)
    return tensors
