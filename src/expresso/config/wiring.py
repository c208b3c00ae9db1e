"""The graph sections of a config (models, datasets, graph, losses, optimizers, pipelines, stages) and their one general form.

A plain config (``model``, ``dataset``, ``loss``, ``optimizer``,
``scheduler``) is the one-node case of the general form, so both are built by
the same code (expresso/assembly/assemble.py)::

    model: {...}          ->  models: {model: {...}}
    dataset: {...}        ->  datasets: {dataset: {...}}
    loss: {...}           ->  losses: {loss: {..., inputs: [y_hat, y]}}   (every loss term reads y_hat, y unless told)
    optimizer: {...}      ->  optimizers: {optimizer: {..., models: [every model], scheduler: <scheduler>}}
    (no graph)            ->  graph: [{model: model, inputs: [x], outputs: [y_hat]}]
    (no pipelines)        ->  pipelines: {main: {dataset: dataset}}   (one pipeline: every metric)
    (no stages)           ->  stages: [{}]          (one stage of trainer.max_epochs)

Every entry keeps the key path it came from, so an error names the file and key.
``general_form`` checks shapes and cross references (a stage naming an
unknown pipeline...) without importing anything, and holds the graph
sections' entries as the typed specs of config/specs.py, their defaults
filled (a pipeline's metrics, a node's name...); a loaded ``Config`` computes
it once (``Config.wiring``). The wiring itself (a cycle, a tensor nobody
writes) is checked by building the graph with placeholder models
(expresso/assembly/checks.py), which ``--check`` runs too.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..names import PREDICTION_AND_TARGET
from .errors import Problem, describe, format_key
from .specs import NodeSpec, PipelineSpec, StageSpec, from_mapping
from .structure import check_entry, check_names, check_references, check_tensor_names

# Keys of a section's entries that the engine reads, besides the callable's own arguments.
FRAMEWORK_KEYS: dict[str, tuple[str, ...]] = {
    "losses": ("inputs", "weight"),
    "metrics": ("inputs",),
    "optimizers": ("models", "param_groups", "scheduler", "clip_grad_norm", "clip_grad_value"),
    "scheduler": ("interval",),
}
SINGULAR = {"models": "model", "datasets": "dataset", "losses": "loss", "optimizers": "optimizer"}


def node_name(spec: dict) -> str | None:
    """A graph node's name: its ``name``, else its model's, else its function's last dotted part (``torch.argmax`` -> ``argmax``)."""
    function = spec.get("function")
    if (
        spec.get("name")
        or spec.get("model")
        or not isinstance(function, dict)
        or not isinstance(function.get("class"), str)
    ):
        return spec.get("name") or spec.get("model")
    return function["class"].rsplit(".", 1)[-1].rsplit(":", 1)[-1]


def framework_keys(path: tuple) -> tuple[str, ...]:
    """The engine's keys in the component at ``path`` (``optimizers.adam``, ``losses.cls``, ``scheduler.0``...)."""
    if len(path) == 2 and path[0] in ("losses", "metrics", "optimizers"):
        return FRAMEWORK_KEYS[path[0]]
    if (
        path[:1] == ("scheduler",)
        and len(path) <= 2
        or (path[:1] == ("optimizers",) and len(path) in (3, 4) and path[2] == "scheduler")
    ):
        return FRAMEWORK_KEYS["scheduler"]
    return ()


@dataclass
class _Components:
    """Name -> (config key path, entry) for the sections of components, which stay mappings."""

    models: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    datasets: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    losses: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    optimizers: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    schedulers: dict[str, tuple[tuple, list]] = field(default_factory=dict)  # optimizer -> (path, entries)


@dataclass
class Wiring(_Components):
    """The general form: every section as (config key path, entry); graph nodes, pipelines and stages as typed specs."""

    graph: list[tuple[tuple, NodeSpec]] = field(default_factory=list)
    pipelines: dict[str, tuple[tuple, PipelineSpec]] = field(default_factory=dict)
    stages: list[tuple[tuple, StageSpec]] = field(default_factory=list)


@dataclass
class _Given(_Components):
    """The general form before its entries are checked: graph nodes, pipelines and stages as the config gives them."""

    graph: list[tuple[tuple, Any]] = field(default_factory=list)
    pipelines: dict[str, tuple[tuple, Any]] = field(default_factory=dict)
    stages: list[tuple[tuple, Any]] = field(default_factory=list)


def general_form(tree: dict, where: Callable[[tuple], str]) -> tuple[Wiring | None, list[Problem]]:
    """The graph sections in the general form, typed and with their defaults filled; or (None, every problem found).

    ``tree`` has passed the schema (validation.py); the wiring holds copies of its entries.
    """
    problems: list[Problem] = []

    def report(path: tuple, message: str, hint: str | None = None) -> None:
        problems.append(Problem(where(path), format_key(path), message, hint))

    for plural, singular in SINGULAR.items():
        if tree.get(plural) and tree.get(singular):
            report((singular,), f"give either {singular!r} or {plural!r}, not both")
    if problems:
        return None, problems
    tree = copy.deepcopy(tree)
    w = _sections(tree)
    _check(tree, w, report)
    return (None, problems) if problems else (_typed(tree, w), [])


def _sections(tree: dict) -> _Given:
    """The plain keys mapped as the module docstring shows; entries as the config gives them, yet unchecked."""
    w = _Given()
    for plural, singular in SINGULAR.items():
        if tree.get(plural):
            setattr(
                w,
                plural,
                {
                    name: ((plural, name), dict(node) if isinstance(node, dict) else node)
                    for name, node in tree[plural].items()
                },
            )
        elif tree.get(singular):
            setattr(w, plural, {singular: ((singular,), dict(tree[singular]))})
    for _, node in w.losses.values():
        if isinstance(node, dict):
            node.setdefault("inputs", list(PREDICTION_AND_TARGET))
    if "optimizer" in w.optimizers:
        path, node = w.optimizers["optimizer"]
        w.optimizers["optimizer"] = (path, {"models": list(w.models), **node})
        if tree.get("scheduler"):
            w.optimizers["optimizer"][1]["scheduler"] = tree["scheduler"]
            w.schedulers["optimizer"] = (("scheduler",), _entries(tree["scheduler"]))
    for name, (path, node) in w.optimizers.items():
        if not isinstance(node, dict):
            continue
        node.setdefault("models", list(w.models))
        if name not in w.schedulers and node.get("scheduler"):
            w.schedulers[name] = (path + ("scheduler",), _entries(node["scheduler"]))
    if tree.get("graph"):
        w.graph = [(("graph", i), node) for i, node in enumerate(tree["graph"]) if isinstance(tree["graph"], list)]
    elif len(w.models) == 1:
        w.graph = [(("model",), {"model": next(iter(w.models))})]
    if tree.get("pipelines"):
        w.pipelines = {
            name: (("pipelines", name), dict(node) if isinstance(node, dict) else {} if node is None else node)
            for name, node in tree["pipelines"].items()
        }
        if len(w.datasets) == 1:  # one dataset: the pipelines read it unless they say otherwise
            for _, node in w.pipelines.values():
                if isinstance(node, dict):
                    node.setdefault("dataset", next(iter(w.datasets)))
    else:
        w.pipelines = {"main": ((), {"dataset": next(iter(w.datasets), None)})}
    w.stages = [(("stages", i), node) for i, node in enumerate(tree.get("stages") or [{}])]
    return w


def _entries(scheduler: Any) -> list:
    return scheduler if isinstance(scheduler, list) else [scheduler]


def _typed(tree: dict, w: _Given) -> Wiring:
    """The checked entries as specs, with the defaults that depend on the rest of the config filled."""
    every_metric = list(tree.get("metrics") or {})
    graph = []
    for path, node in w.graph:
        spec = from_mapping(NodeSpec, node)
        spec.name = node_name(node)
        graph.append((path, spec))
    pipelines = {}
    for name, (path, node) in w.pipelines.items():
        pipeline = from_mapping(PipelineSpec, node)
        if pipeline.metrics is None:  # one pipeline records every metric; several name theirs
            pipeline.metrics = every_metric if len(w.pipelines) == 1 else []
        pipelines[name] = (path, pipeline)
    stages = [(path, from_mapping(StageSpec, node)) for path, node in w.stages]
    components = {f.name: getattr(w, f.name) for f in dataclasses.fields(_Components)}
    return Wiring(**components, graph=graph, pipelines=pipelines, stages=stages)


def _check(tree: dict, w: _Given, report) -> None:
    """Shapes and cross references of the graph sections: every name a section uses must exist."""
    if len(w.models) > 1 and not tree.get("graph"):
        report(
            ("models",), "several models need a 'graph': the nodes that say which tensors each model reads and writes"
        )
    nodes = [node_name(node) for _, node in w.graph if isinstance(node, dict) and isinstance(node_name(node), str)]
    known = {
        "models": w.models,
        "datasets": w.datasets,
        "losses": w.losses,
        "optimizers": w.optimizers,
        "pipelines": w.pipelines,
        "metrics": tree.get("metrics") or {},
        "nodes": dict.fromkeys(nodes),
    }
    for path, node in w.graph:
        if not check_entry(NodeSpec, node, path, report):
            continue
        if ("model" in node) == ("function" in node):
            report(path, "a graph node needs exactly one of 'model' (a name in models) or 'function' (a component)")
        else:
            check_references(NodeSpec, node, path, known, report)
    for path, node in w.losses.values():
        if isinstance(node, dict):
            if "inputs" in node:
                check_tensor_names(node["inputs"], path + ("inputs",), report)
            if "weight" in node and (isinstance(node["weight"], bool) or not isinstance(node["weight"], (int, float))):
                report(path + ("weight",), f"received {describe(node['weight'])}, expected a number")
    for name, node in (tree.get("metrics") or {}).items():
        if isinstance(node, dict) and "inputs" in node:
            check_tensor_names(node["inputs"], ("metrics", name, "inputs"), report, length=2)
    for path, node in w.optimizers.values():
        if isinstance(node, dict):
            _optimizer(node, path, w, report)
    for path, node in w.pipelines.values() if tree.get("pipelines") else ():
        if not check_entry(PipelineSpec, node, path, report):
            continue
        if "dataset" not in node and len(w.datasets) != 1:
            report(path, f"missing 'dataset': name one of {sorted(w.datasets, key=str)}")
        check_references(PipelineSpec, node, path, known, report)
    for path, node in w.stages if tree.get("stages") else ():
        if not check_entry(StageSpec, node, path, report):
            continue
        check_references(StageSpec, node, path, known, report)
        mode = node.get("interleave")
        if isinstance(mode, dict):
            trained = node.get("train") if isinstance(node.get("train"), list) else list(w.pipelines)
            check_names(
                list(mode),
                path + ("interleave",),
                dict.fromkeys(t for t in trained if isinstance(t, str)),
                "trained pipeline",
                report,
            )


def _optimizer(node: dict, path: tuple, w: _Given, report) -> None:
    if "models" in node and node["models"] is None:
        report(path + ("models",), "received None, expected a list of names (leave 'models' out for the default)")
    check_names(node.get("models"), path + ("models",), w.models, "model", report)
    for i, group in enumerate(node.get("param_groups") or []):
        at = path + ("param_groups", i)
        if not isinstance(group, dict) or "models" not in group:
            report(
                at,
                "a parameter group is a mapping with 'models' (names) and its own options, e.g. {models: [encoder], lr: 1.0e-4}",
            )
            continue
        check_names(group["models"], at + ("models",), w.models, "model", report)
    for key in ("clip_grad_norm", "clip_grad_value"):
        value = node.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            report(path + (key,), f"received {describe(value)}, expected a number > 0")
