"""A graph of models wired by named tensors: the one engine behind every config.

A batch becomes a dict of named tensors (``x``, ``y`` for an ``(input,
target)`` pair; a dict batch keeps its keys). Each node calls its model on the
tensors it names and stores its outputs under new names; nodes run writers
before readers (the configured order among independent ones), and the graph
is checked before any step: a cycle, a tensor written twice, a model in no
node and, when the batch's names are given, a tensor nobody provides, each
fail naming the node and the tensor.
Loss terms read named tensors and carry a weight; their weighted sum is the
``loss``. Each optimizer updates the parameters of the models it names.

The plain config (``model``, ``loss``, ``optimizer``) is the one-node case::

    x --[model]--> y_hat ;  loss = CrossEntropy(y_hat, y)

An encoder feeding two heads with two optimizers is the same code with
more nodes (see tests/unit/engine/test_graph.py).
"""

from __future__ import annotations

import difflib
import heapq
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
    batch: Sequence[str] | None = None  # the tensor names a batch provides; None: known only at the first batch

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
        """Fail before training on a wiring mistake, naming the node and the tensor; order the nodes by their data."""
        written: dict[str, int] = {}  # tensor -> index of the node that writes it
        for i, node in enumerate(self.nodes):
            if node.model not in self.models:
                raise ValueError(f"graph node {i} names model {node.model!r}, which is not among {sorted(self.models)}")
            for name in node.outputs:
                if name in written:
                    raise ValueError(f"graph node {i} ({node.model}) writes tensor {name!r}, already written by {self.nodes[written[name]].model}")
                if self.batch is not None and name in self.batch:
                    raise ValueError(f"graph node {i} ({node.model}) writes tensor {name!r}, which the batch already provides")
                written[name] = i
        if self.batch is not None:
            self._check_reads(set(self.batch) | set(written))
        unused = [name for name in self.models if name not in {node.model for node in self.nodes}]
        if unused:
            raise ValueError(f"model(s) {unused} are in no graph node: add a node for each, or remove them")
        for spec_name, spec in self.optimizers.items():
            unknown = [m for m in spec.models if m not in self.models]
            if unknown:
                raise ValueError(f"optimizer {spec_name!r} names unknown model(s) {unknown}")
        self.ordered = [self.nodes[i] for i in self._data_order(written)]

    def _check_reads(self, known: set[str]) -> None:
        readers = [(f"graph node {i} ({node.model})", node.inputs) for i, node in enumerate(self.nodes)]
        readers += [(f"loss term {term.name!r}", term.inputs) for term in self.losses]
        for who, inputs in readers:
            for name in inputs:
                if name not in known:
                    near = difflib.get_close_matches(name, sorted(known), n=1)
                    hint = f"; did you mean {near[0]!r}?" if near else ""
                    raise ValueError(f"{who} reads tensor {name!r}, which neither the batch {list(self.batch)} nor any node writes{hint}")

    def _data_order(self, written: dict[str, int]) -> list[int]:
        """Node indices with every writer before its readers (configured order among the free); a cycle is an error."""
        needs = {i: {written[t] for t in node.inputs if t in written} for i, node in enumerate(self.nodes)}
        ready = [i for i, wanted in needs.items() if not wanted]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            done = heapq.heappop(ready)
            order.append(done)
            for i, wanted in needs.items():
                if done in wanted:
                    wanted.discard(done)
                    if not wanted:
                        heapq.heappush(ready, i)
        if len(order) < len(self.nodes):
            raise ValueError(f"graph nodes form a cycle: {self._cycle(written, set(order))}")
        return order

    def _cycle(self, written: dict[str, int], placed: set[int]) -> str:
        """One cycle among the nodes that could not be placed, as 'A reads 't' from B, ...'."""
        path: list[tuple[int, str]] = []  # (node, the tensor it reads from the next node)
        seen: dict[int, int] = {}
        i = min(set(range(len(self.nodes))) - placed)
        while i not in seen:
            seen[i] = len(path)
            tensor = next(t for t in self.nodes[i].inputs if t in written and written[t] not in placed)
            path.append((i, tensor))
            i = written[tensor]
        loop = path[seen[i] :]
        return ", ".join(f"{self.nodes[a].model} reads {t!r} from {self.nodes[written[t]].model}" for a, t in loop)

    def forward(self, tensors: dict[str, Any]) -> dict[str, Any]:
        for node in self.ordered:
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
