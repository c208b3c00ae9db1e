"""The graph sections of a config (models, datasets, graph, losses, optimizers, pipelines, stages) and their one general form.

A plain config (``model``, ``dataset``, ``loss``, ``optimizer``,
``scheduler``) is the one-node case of the general form, so both are built by
the same code (expresso/assembly/assemble.py)::

    model: {...}          ->  models: {model: {...}}
    dataset: {...}        ->  datasets: {dataset: {...}}
    loss: {...}           ->  losses: {loss: {..., inputs: [y_hat, y]}}
    optimizer: {...}      ->  optimizers: {optimizer: {..., models: [every model], scheduler: <scheduler>}}
    (no graph)            ->  graph: [{model: model, inputs: [x], outputs: [y_hat]}]
    (no pipelines)        ->  pipelines: {main: {dataset: dataset}}
    (no stages)           ->  stages: [{}]          (one stage of trainer.max_epochs)

Every entry keeps the key path it came from, so an error names the file and key.
``structure_problems`` checks shapes and cross references (a stage naming
an unknown pipeline...) without importing anything; the wiring itself (a
cycle, a tensor nobody writes) is checked by building the graph with
placeholder models (expresso/assembly/checks.py), which ``--check`` runs too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..names import PREDICTION_AND_TARGET
from .errors import Problem, describe, format_key, suggest

# Keys of a section's entries that the engine reads, besides the callable's own arguments.
FRAMEWORK_KEYS: dict[str, tuple[str, ...]] = {
    "losses": ("inputs", "weight"),
    "metrics": ("inputs",),
    "optimizers": ("models", "param_groups", "scheduler", "clip_grad_norm", "clip_grad_value"),
    "scheduler": ("interval",),
}
NODE_KEYS = ("name", "model", "function", "inputs", "outputs", "detach", "forward_hooks", "backward_hooks")
PIPELINE_KEYS = ("dataset", "losses", "metrics", "nodes", "batch", "updates")
UPDATE_KEYS = ("losses", "optimizers", "name")
STAGE_KEYS = ("name", "train", "val", "frozen", "epochs", "early_stopping", "until", "interleave")
EARLY_STOPPING_KEYS = ("monitor", "mode", "patience", "min_delta")
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
class Wiring:
    """The general form: name -> (config key path, node) per section; graph, pipelines and stages as lists/dicts."""

    models: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    datasets: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    losses: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    optimizers: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    graph: list[tuple[tuple, dict]] = field(default_factory=list)
    pipelines: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    stages: list[tuple[tuple, dict]] = field(default_factory=list)
    schedulers: dict[str, tuple[tuple, list]] = field(default_factory=dict)  # optimizer -> (path, entries)


def general_form(tree: dict) -> Wiring:
    """The config's sections in the general form (the plain keys mapped as the module docstring shows)."""
    w = Wiring()
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
            node = dict(tree[singular])
            if plural == "losses":
                node.setdefault("inputs", list(PREDICTION_AND_TARGET))
            setattr(w, plural, {singular: ((singular,), node)})
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
        w.pipelines = {
            "main": ((), {"dataset": next(iter(w.datasets), None), "metrics": list(tree.get("metrics") or {})})
        }
    w.stages = [(("stages", i), node) for i, node in enumerate(tree.get("stages") or [{}])]
    return w


def _entries(scheduler: Any) -> list:
    return scheduler if isinstance(scheduler, list) else [scheduler]


def structure_problems(tree: dict, where: Callable[[tuple], str]) -> list[Problem]:
    """Shapes and cross references of the graph sections: every name a section uses must exist."""
    problems: list[Problem] = []

    def report(path: tuple, message: str, hint: str | None = None) -> None:
        problems.append(Problem(where(path), format_key(path), message, hint))

    for plural, singular in SINGULAR.items():
        if tree.get(plural) and tree.get(singular):
            report((singular,), f"give either {singular!r} or {plural!r}, not both")
    if problems:
        return problems
    w = general_form(tree)
    if len(w.models) > 1 and not tree.get("graph"):
        report(
            ("models",), "several models need a 'graph': the nodes that say which tensors each model reads and writes"
        )
    for path, node in w.graph:
        _keys(node, path, NODE_KEYS, "graph node", report)
        if isinstance(node, dict):
            if ("model" in node) == ("function" in node):
                report(path, "a graph node needs exactly one of 'model' (a name in models) or 'function' (a component)")
            elif "model" in node:
                _names(node["model"], path + ("model",), w.models, "model", report, single=True)
            if node.get("name") is not None and not isinstance(node["name"], str):
                report(path + ("name",), f"received {describe(node['name'])}, expected a string")
            for key in ("inputs", "outputs"):
                if key in node:
                    _strings(node[key], path + (key,), report)
    for path, node in w.losses.values():
        if isinstance(node, dict):
            if "inputs" in node:
                _strings(node["inputs"], path + ("inputs",), report)
            if "weight" in node and (isinstance(node["weight"], bool) or not isinstance(node["weight"], (int, float))):
                report(path + ("weight",), f"received {describe(node['weight'])}, expected a number")
    for name, node in (tree.get("metrics") or {}).items():
        if isinstance(node, dict) and "inputs" in node:
            _strings(node["inputs"], ("metrics", name, "inputs"), report, length=2)
    for path, node in w.optimizers.values():
        if not isinstance(node, dict):
            continue
        _not_null(node, ("models",), path, report)
        _names(node.get("models"), path + ("models",), w.models, "model", report)
        for i, group in enumerate(node.get("param_groups") or []):
            at = path + ("param_groups", i)
            if not isinstance(group, dict) or "models" not in group:
                report(
                    at,
                    "a parameter group is a mapping with 'models' (names) and its own options, e.g. {models: [encoder], lr: 1.0e-4}",
                )
                continue
            _names(group["models"], at + ("models",), w.models, "model", report)
        for key in ("clip_grad_norm", "clip_grad_value"):
            value = node.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                report(path + (key,), f"received {describe(value)}, expected a number > 0")
    nodes = [node_name(node) for _, node in w.graph if isinstance(node, dict) and isinstance(node_name(node), str)]
    for path, node in w.pipelines.values():
        if not tree.get("pipelines"):
            break
        _keys(node, path, PIPELINE_KEYS, "pipeline", report)
        if not isinstance(node, dict):
            continue
        if "dataset" in node and not isinstance(node["dataset"], dict):
            _names(node["dataset"], path + ("dataset",), w.datasets, "dataset", report, single=True)
        elif "dataset" not in node and len(w.datasets) != 1:
            report(path, f"missing 'dataset': name one of {sorted(w.datasets, key=str)}")
        _not_null(node, ("metrics",), path, report)
        _names(node.get("losses"), path + ("losses",), w.losses, "loss term", report)
        _names(node.get("metrics"), path + ("metrics",), tree.get("metrics") or {}, "metric", report)
        _names(node.get("nodes"), path + ("nodes",), dict.fromkeys(nodes), "graph node", report)
        if "batch" in node and not isinstance(node["batch"], dict):
            _strings(node["batch"], path + ("batch",), report)
        for i, update in enumerate(node.get("updates") or []):
            at = path + ("updates", i)
            _keys(update, at, UPDATE_KEYS, "update", report)
            if isinstance(update, dict):
                if "losses" not in update:
                    report(at, "missing 'losses': the loss terms this update backpropagates")
                _names(update.get("losses"), at + ("losses",), w.losses, "loss term", report)
                _names(update.get("optimizers"), at + ("optimizers",), w.optimizers, "optimizer", report)
    for path, node in w.stages:
        if not tree.get("stages"):
            break
        _keys(node, path, STAGE_KEYS, "stage", report)
        if not isinstance(node, dict):
            continue
        _not_null(node, ("frozen",), path, report)
        for key in ("train", "val"):
            _names(node.get(key), path + (key,), w.pipelines, "pipeline", report)
        _names(node.get("frozen"), path + ("frozen",), w.models, "model", report)
        epochs = node.get("epochs")
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            report(path + ("epochs",), f"received {describe(epochs)}, expected an integer >= 1")
        if "early_stopping" in node:
            _keys(node["early_stopping"], path + ("early_stopping",), EARLY_STOPPING_KEYS, "early_stopping", report)
        mode = node.get("interleave", "round_robin")
        if isinstance(mode, dict):
            trained = node.get("train") if isinstance(node.get("train"), list) else list(w.pipelines)
            _names(
                list(mode),
                path + ("interleave",),
                dict.fromkeys(t for t in trained if isinstance(t, str)),
                "trained pipeline",
                report,
            )
        elif mode not in ("round_robin", "sequential"):
            report(
                path + ("interleave",),
                f"received {describe(mode)}, expected round_robin, sequential or a mapping of pipeline: batches",
            )
    return problems


def _keys(node: Any, path: tuple, allowed: tuple, what: str, report) -> None:
    if not isinstance(node, dict):
        report(path, f"received {describe(node)}, expected a mapping (a {what})")
        return
    for key in node:
        if key not in allowed:
            report(
                path + (key,), f"unknown key of a {what} (it takes: {', '.join(allowed)})", suggest(str(key), allowed)
            )


def _not_null(node: dict, keys: tuple, path: tuple, report) -> None:
    """Keys whose absence means a default (every model, every metric, nothing frozen): null is not that default."""
    for key in keys:
        if key in node and node[key] is None:
            report(path + (key,), f"received None, expected a list of names (leave '{key}' out for the default)")


def _strings(value: Any, path: tuple, report, length: int | None = None) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (length and len(value) != length):
        expected = f"a list of {length} tensor names" if length else "a list of tensor names"
        report(path, f"received {describe(value)}, expected {expected}")


def _names(value: Any, path: tuple, known, what: str, report, single: bool = False) -> None:
    """``value`` (a name, or a list of names) must all be among ``known``."""
    if value is None:
        return
    items = [value] if single else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        report(
            path,
            f"received {describe(value)}, expected {'a name' if single else 'a list of names'} among {sorted(known, key=str)}",
        )
        return
    for item in items:
        if item not in known:
            report(
                path, f"unknown {what} {item!r}; expected one of {sorted(known, key=str)}", suggest(item, list(known))
            )
