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

import dataclasses
import difflib
import functools
import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..names import INPUT, PREDICTION, PREDICTION_AND_TARGET, TARGET
from .checkpoints.optimizer_state import state_problem
from .compiling import CompileError, compile_failed, compile_models, from_compiler


class GraphError(ValueError):
    """A wiring mistake, found before training; ``at`` is where in the config it lies (("graph", 2), ("losses", "cls"), ...)."""

    def __init__(self, message: str, at: tuple = ()):
        super().__init__(message)
        self.at = at


@dataclass
class Node:
    """One call in the graph: a model (or a parameter-free ``function``) on named tensors.

    ``name`` defaults to the model's name; a model used by several nodes
    (a discriminator on real and on generated images) needs a name per node.
    A returned list or tuple is spread over ``outputs`` by position (a
    model's ``return [x]`` fills one name, a pair two); a count that differs
    from the names is a GraphError at the first batch, naming the node.
    ``detach`` (true, or some input names) cuts the gradient into this node's
    inputs: a GAN's discriminator step must not reach the generator.
    ``forward_hooks`` are called as ``hook(node_name, outputs)`` after the
    call and may return replaced outputs (a dict); ``backward_hooks`` as
    ``hook(node_name, tensor_name, grad)`` when a gradient reaches an
    output, and may return a replaced gradient.
    """

    model: str | None = None
    inputs: Sequence[str] = (INPUT,)
    outputs: Sequence[str] = (PREDICTION,)
    name: str | None = None
    function: Callable | None = None
    detach: bool | Sequence[str] = False
    forward_hooks: Sequence[Callable] = ()
    backward_hooks: Sequence[Callable] = ()

    def __post_init__(self) -> None:
        if (self.model is None) == (self.function is None):
            raise GraphError(f"graph node {self.name or self.model!r} needs exactly one of a model or a function")
        if self.name is None:
            self.name = (
                self.model
                if self.model is not None
                else getattr(self.function, "__name__", None) or repr(self.function)
            )

    def detached(self, name: str) -> bool:
        return self.detach is True or (not isinstance(self.detach, bool) and name in self.detach)


@dataclass
class LossTerm:
    """One term of the loss: ``weight * fn(*tensors named by inputs)``; the graph's ``loss`` sums the terms.

    ``name`` is how it is logged (``loss/<name>``, when there are several
    terms) and where a wiring error points (``losses.<name>``).
    """

    name: str
    fn: Callable[..., Tensor]
    inputs: Sequence[str] = PREDICTION_AND_TARGET
    weight: float = 1.0


@dataclass
class OptimizerSpec:
    """An optimizer over some models' parameters, with optional gradient clipping before each step."""

    optimizer: torch.optim.Optimizer
    models: Sequence[str]
    clip_grad_norm: float | None = None
    clip_grad_value: float | None = None

    def clip(self) -> None:
        if self.clip_grad_norm is None and self.clip_grad_value is None:
            return
        params = [p for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self.clip_grad_value is not None:
            nn.utils.clip_grad_value_(params, self.clip_grad_value)
        if self.clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(params, self.clip_grad_norm)


def batch_to_tensors(batch: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Name a batch's parts: ``(x, y)`` -> {"x", "y"} (or ``names``); dicts keep their keys, dataclasses and named tuples their fields."""
    if isinstance(batch, Mapping):
        return dict(batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    if isinstance(batch, tuple) and hasattr(batch, "_asdict"):
        return batch._asdict()
    if isinstance(batch, (tuple, list)):
        if names is not None:
            if len(names) != len(batch):
                raise ValueError(f"a batch of {len(batch)} parts cannot take the {len(names)} names {list(names)}")
            return dict(zip(names, batch))
        if len(batch) == 2:
            return {INPUT: batch[0], TARGET: batch[1]}
        if len(batch) == 1:
            return {INPUT: batch[0]}
        raise ValueError(f"a batch of {len(batch)} parts needs names: return a dict from the dataset")
    return {names[0] if names else INPUT: batch}


@dataclass
class Graph:
    """Models wired by named tensors, their loss terms and optimizers: what the loop trains (the module docstring draws it).

    ``nodes`` run in data order (writers before readers), ``losses`` read
    the tensors they produce, each optimizer in ``optimizers`` steps the
    models it names. ``batch``: the tensor names a batch provides, when
    known, so a tensor nobody provides fails at construction, not at the
    first batch. A plain model, loss and optimizer is ``Graph.single``.
    """

    models: dict[str, nn.Module]
    nodes: list[Node]
    losses: list[LossTerm]
    optimizers: dict[str, OptimizerSpec] = field(default_factory=dict)
    batch: Sequence[str] | None = None  # the tensor names a batch provides; None: known only at the first batch

    def __post_init__(self) -> None:
        self.validate()
        self.callables: dict[str, Callable] = dict(
            self.models
        )  # what forward() calls: the models, or their compiled forms
        self.frozen: set[str] = set()  # models a stage froze: kept in eval mode
        self.compiled: set[str] = set()  # models run through torch.compile

    def compile(self, mode: str | None = None) -> None:
        """Run each model through ``torch.compile``; ``models`` keep the originals (checkpoints stay plain state dicts).

        torch compiles at a model's first call: a failure there (no C++
        compiler for inductor...) is a ``CompileError`` naming the model.
        """
        self.callables = compile_models(self.models, mode)
        self.compiled = set(self.models)

    @classmethod
    def single(cls, model: nn.Module, loss: Callable | None, optimizer: torch.optim.Optimizer | None) -> Graph:
        """The one-node graph of the plain config."""
        return cls(
            models={"model": model},
            nodes=[Node("model")],
            losses=[LossTerm("loss", loss)] if loss is not None else [],
            optimizers={"optimizer": OptimizerSpec(optimizer, ["model"])} if optimizer is not None else {},
        )

    # -- state -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the graph: every model's weights and every optimizer's state, by name."""
        return {
            "models": {name: model.state_dict() for name, model in self.models.items()},
            "optimizers": {name: spec.optimizer.state_dict() for name, spec in self.optimizers.items()},
        }

    def load_optimizer_states(self, saved: Mapping[str, Any]) -> None:
        """Every optimizer's state from ``saved`` (a checkpoint's ``optimizers``), each checked before it is loaded.

        The weights load apart (snapshot.load_models), since ``init_from``
        takes them alone; a state that would break its optimizer is a
        ValueError naming it.
        """
        for name, spec in self.optimizers.items():
            problem = state_problem(spec.optimizer, saved[name])
            if problem:
                raise ValueError(f"optimizer {name!r}: {problem}")
            spec.optimizer.load_state_dict(saved[name])

    # -- validation ---------------------------------------------------------
    def validate(self) -> None:
        """Fail before training on a wiring mistake, naming the node and the tensor; order the nodes by their data."""
        self.writer: dict[str, int] = {}  # tensor -> index of the node that writes it
        seen: dict[str | None, int] = {}  # every node has its name once __post_init__ ran
        for i, node in enumerate(self.nodes):
            at = ("graph", i)
            if node.name in seen:
                raise GraphError(
                    f"graph nodes {seen[node.name]} and {i} are both named {node.name!r}: give each node its own name",
                    at,
                )
            seen[node.name] = i
            if node.model is not None and node.model not in self.models:
                raise GraphError(
                    f"graph node {i} names model {node.model!r}, which is not among {sorted(self.models)}", at
                )
            for name in node.outputs:
                if name in self.writer:
                    raise GraphError(
                        f"graph node {i} ({node.name}) writes tensor {name!r}, already written by {self.nodes[self.writer[name]].name}",
                        at,
                    )
                if self.batch is not None and name in self.batch:
                    raise GraphError(
                        f"graph node {i} ({node.name}) writes tensor {name!r}, which the batch already provides", at
                    )
                self.writer[name] = i
        if self.batch is not None:
            self.check_reads(range(len(self.nodes)), self.losses, self.batch)
        used = {node.model for node in self.nodes}
        unused = [name for name in self.models if name not in used]
        if unused:
            raise GraphError(
                f"model(s) {unused} are in no graph node: add a node for each, or remove them", ("models", unused[0])
            )
        for spec_name, spec in self.optimizers.items():
            unknown = [m for m in spec.models if m not in self.models]
            if unknown:
                raise GraphError(f"optimizer {spec_name!r} names unknown model(s) {unknown}", ("optimizers", spec_name))
        self.order = self._data_order()
        self.ordered = [self.nodes[i] for i in self.order]
        self.node_index = {node.name: i for i, node in enumerate(self.nodes)}

    def check_reads(
        self,
        nodes: Iterable[int],
        losses: Iterable[LossTerm],
        batch: Sequence[str],
        who: str = "",
        reads: Mapping[str, Sequence[str]] = {},
    ) -> None:  # noqa: B006
        """Every tensor these nodes, loss terms (and ``reads``: other readers) read must come from the batch or one of these nodes."""
        nodes = list(nodes)
        known = set(batch) | {t for i in nodes for t in self.nodes[i].outputs}
        near_names = sorted(set(batch) | set(self.writer))  # a suggestion may name a tensor of another pipeline
        readers: list[tuple[str, Sequence[str], tuple]] = [
            (f"graph node {i} ({self.nodes[i].name})", self.nodes[i].inputs, ("graph", i)) for i in nodes
        ]
        readers += [(f"loss term {term.name!r}", term.inputs, ("losses", term.name)) for term in losses]
        readers += [(reader, inputs, ()) for reader, inputs in reads.items()]
        for reader, inputs, at in readers:
            for name in inputs:
                if name not in known:
                    near = difflib.get_close_matches(name, near_names, n=1)
                    hint = f"; did you mean {near[0]!r}?" if near else ""
                    source = f"the batch {list(batch)}" + (f" of pipeline {who!r}" if who else "")
                    raise GraphError(
                        f"{reader} reads tensor {name!r}, which neither {source} nor any node writes{hint}", at
                    )

    def needed(self, tensors: Iterable[str], among: Iterable[int] | None = None) -> list[int]:
        """Indices (in data order) of the nodes that must run to produce ``tensors``; ``among`` limits the candidates."""
        allowed = set(range(len(self.nodes))) if among is None else set(among)
        wanted: set[int] = set()
        todo = [t for t in tensors]
        while todo:
            i = self.writer.get(todo.pop())
            if i is None or i in wanted or i not in allowed:
                continue
            wanted.add(i)
            todo.extend(self.nodes[i].inputs)
        return [i for i in self.order if i in wanted]

    def _data_order(self) -> list[int]:
        """Node indices with every writer before its readers (configured order among the free); a cycle is an error."""
        written = self.writer
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
            first = min(set(range(len(self.nodes))) - set(order))
            raise GraphError(f"graph nodes form a cycle: {self._cycle(set(order))}", ("graph", first))
        return order

    def _cycle(self, placed: set[int]) -> str:
        """One cycle among the nodes that could not be placed, as 'A reads 't' from B, ...'."""
        written = self.writer
        path: list[tuple[int, str]] = []  # (node, the tensor it reads from the next node)
        seen: dict[int, int] = {}
        i = min(set(range(len(self.nodes))) - placed)
        while i not in seen:
            seen[i] = len(path)
            tensor = next(t for t in self.nodes[i].inputs if t in written and written[t] not in placed)
            path.append((i, tensor))
            i = written[tensor]
        loop = path[seen[i] :]
        return ", ".join(f"{self.nodes[a].name} reads {t!r} from {self.nodes[written[t]].name}" for a, t in loop)

    # -- running ------------------------------------------------------------
    def forward(self, tensors: dict[str, Any], nodes: Sequence[int] | None = None) -> dict[str, Any]:
        """Run ``nodes`` (indices in data order; default: every node) on ``tensors``, adding their outputs."""
        for i in self.order if nodes is None else nodes:
            node = self.nodes[i]
            try:
                args = [tensors[name] for name in node.inputs]
            except KeyError as exc:
                raise KeyError(
                    f"graph node {node.name!r} reads tensor {exc.args[0]!r}, which is not in {sorted(tensors)}"
                ) from None
            if node.detach:
                args = [
                    a.detach() if node.detached(name) and isinstance(a, Tensor) else a
                    for name, a in zip(node.inputs, args)
                ]
            call = self.callables[node.model] if node.model is not None else node.function
            assert call is not None  # __post_init__: a node has a model or a function
            try:
                out = call(*args)
            except Exception as exc:
                if node.model in self.compiled and from_compiler(exc):
                    raise CompileError(compile_failed(node.model, exc)) from exc
                raise
            if isinstance(out, (tuple, list)) and len(out) == len(node.outputs):
                produced = dict(zip(node.outputs, out))  # by position: [x] to one name, (a, b) to two
            elif len(node.outputs) == 1 and not isinstance(out, (tuple, list)):
                produced = {node.outputs[0]: out}  # a tensor, a dict, anything else: the one name holds it
            else:
                raise _outputs_mismatch(node, out, i)
            for hook in node.forward_hooks:
                produced = hook(node.name, produced) or produced
            for hook in node.backward_hooks:
                for name, value in produced.items():
                    if isinstance(value, Tensor) and value.requires_grad:
                        value.register_hook(functools.partial(hook, node.name, name))
            tensors.update(produced)
        return tensors

    def loss(
        self, tensors: dict[str, Any], terms: Sequence[LossTerm] | None = None, log_terms: bool | None = None
    ) -> Tensor:
        """Weighted sum of the loss terms (default: all); each term is also stored as ``loss/<name>`` when there are several."""
        terms = self.losses if terms is None else terms
        log_terms = len(terms) > 1 if log_terms is None else log_terms
        total: Any = None  # a Tensor once the first term is added; callers never pass no terms
        for term in terms:
            value = term.fn(*(tensors[name] for name in term.inputs))
            if log_terms:
                tensors[f"loss/{term.name}"] = value.detach()
            weighted = value if term.weight == 1.0 else term.weight * value
            total = weighted if total is None else total + weighted
        tensors["loss"] = total
        return total

    def train(self, mode: bool = True) -> None:
        """Training or evaluation mode for every model; a frozen model stays in evaluation mode."""
        for name, model in self.models.items():
            model.train(mode and name not in self.frozen)

    def parameters_of(self, names: Sequence[str]) -> list[nn.Parameter]:
        return [p for name in names for p in self.models[name].parameters()]


def _outputs_mismatch(node: Node, out: Any, index: int) -> GraphError:
    """A node returned a different number of values than it has output names: say which node, what came back and the fix."""
    sequence = isinstance(out, (tuple, list))
    count, declared = (len(out) if sequence else 1), len(node.outputs)
    what = (
        f"a {'list' if isinstance(out, list) else 'tuple'} of {count} value{'s' * (count != 1)}"
        if sequence
        else f"one {type(out).__name__}"
    )
    names = ", ".join([*node.outputs[:count], *(f"{node.outputs[0]}_{k}" for k in range(declared, count))])
    fix = (
        f"{{model: {node.model}, inputs: [{', '.join(node.inputs)}], outputs: [{names}]}}"
        if node.model is not None
        else f"outputs: [{names}]"
    )
    model = f" (model {node.model!r})" if node.model is not None else ""
    return GraphError(
        f"graph node {node.name!r}{model} returned {what}, but declares {declared} output name{'s' * (declared != 1)} {list(node.outputs)}: "
        f"declare one name per value in the config's graph node ({fix}), or return {declared} value{'s' * (declared != 1)}",
        ("graph", index),
    )


def default_step(graph: Graph, tensors: dict[str, Any]) -> dict[str, Any]:
    """Forward every node, then the losses. A config's ``step`` replaces this function."""
    graph.forward(tensors)
    if graph.losses:
        graph.loss(tensors)
    return tensors
