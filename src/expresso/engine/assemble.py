"""From the general form of a config (config/wiring.py) to a graph, its pipelines and stages: one path for every config.

The plain config arrives here as a graph of one node, so a single model and
a GAN are built by the same lines. ``wiring_problems`` runs the same checks
with placeholder models, so ``expresso config --check`` finds a cycle or an
unknown tensor without building anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..config import ConfigError, Problem, instantiate
from ..config.callables import CallableNotFound, locate
from ..config.errors import format_key
from ..config.instantiate import instantiate_function
from ..config.wiring import FRAMEWORK_KEYS, Wiring, general_form, node_name
from .graph import Graph, GraphError, LossTerm, Node, OptimizerSpec
from .monitored import monitor_problems
from .pipeline import Pipeline, Plan, Update
from .stages import Stage

DEFAULT_INPUTS, DEFAULT_OUTPUTS = ["x"], ["y_hat"]


def _plain(node: dict, section: str) -> dict:
    """A component without the engine's keys: what instantiate calls."""
    return {k: v for k, v in node.items() if k not in FRAMEWORK_KEYS[section]}


def _node(spec: dict, build: bool) -> Node:
    function = spec.get("function")
    return Node(
        model=spec.get("model"),
        function=(instantiate_function(function) if build else _placeholder) if function is not None else None,
        inputs=spec.get("inputs", DEFAULT_INPUTS),
        outputs=spec.get("outputs", DEFAULT_OUTPUTS),
        name=node_name(spec),
        detach=spec.get("detach", False),
        forward_hooks=[instantiate_function(h) for h in spec.get("forward_hooks") or []] if build else (),
        backward_hooks=[instantiate_function(h) for h in spec.get("backward_hooks") or []] if build else (),
    )


def _placeholder(*args: Any) -> None:
    """Stands in for a function node while only the wiring is checked."""


def _param_groups(node: dict, models: Mapping[str, Any]) -> list:
    """The optimizer's parameters: its models', with ``param_groups`` carrying their own options; the rest in one default group."""
    groups, taken = [], set()
    for group in node.get("param_groups") or []:
        params = [p for name in group["models"] for p in models[name].parameters() if id(p) not in taken]
        taken.update(map(id, params))
        groups.append({**{k: v for k, v in group.items() if k != "models"}, "params": params})
    rest = [p for name in node["models"] for p in models[name].parameters() if id(p) not in taken]
    if not groups:
        return rest
    return groups + ([{"params": rest}] if rest else [])


def assemble(
    config,
    tree: dict,
    build_metric: Callable[[dict, tuple], Any],
    build_datasets: Callable[[dict], dict],
    models_built: Callable[[dict], None],
) -> dict[str, Any]:
    """Build models, graph, optimizers, pipelines and stages; errors name the file and key of the entry at fault."""
    from ..callbacks import EarlyStopping

    w = general_form(tree)
    models = {}
    for name, (path, node) in w.models.items():
        with building(config, *path):
            models[name] = instantiate(node)
    models_built(models)
    datasets = {}
    for name, (path, node) in w.datasets.items():
        with building(config, *path):
            datasets[name] = build_datasets(node)
    losses = []
    for name, (path, node) in w.losses.items():
        with building(config, *path):
            losses.append(
                LossTerm(
                    name,
                    instantiate(_plain(node, "losses")),
                    node.get("inputs", ["y_hat", "y"]),
                    node.get("weight", 1.0),
                )
            )
    optimizers = {}
    for name, (path, node) in w.optimizers.items():
        with building(config, *path):
            built = instantiate({k: v for k, v in _plain(node, "optimizers").items()}, _param_groups(node, models))
            optimizers[name] = OptimizerSpec(
                built, node["models"], node.get("clip_grad_norm"), node.get("clip_grad_value")
            )
    nodes = []
    for path, spec in w.graph:
        with building(config, *path):  # a function node's class is built here, and may reject its arguments
            nodes.append(_node(spec, build=True))
    with wired(config, w):
        graph = Graph(models=models, nodes=nodes, losses=losses, optimizers=optimizers)
    pipelines = []
    for name, (path, node) in w.pipelines.items():
        with building(config, *path):
            data = (
                datasets[node["dataset"]]
                if isinstance(node.get("dataset"), str)
                else build_datasets(node["dataset"])
                if node.get("dataset")
                else {}
            )
            metric_names = node.get("metrics", list(tree.get("metrics") or {}) if len(w.pipelines) == 1 else [])
            metrics = {
                m: build_metric({k: v for k, v in tree["metrics"][m].items() if k != "inputs"}, ("metrics", m))
                for m in metric_names
            }
            inputs = {m: tree["metrics"][m]["inputs"] for m in metric_names if "inputs" in tree["metrics"][m]}
            batch = node.get("batch")
            if isinstance(batch, dict):
                with building(config, *path, "batch"):
                    batch = instantiate_function(batch)
            pipelines.append(_pipeline(name, node, data, metrics, inputs, batch))
    stages = []
    for path, node in w.stages:
        with building(config, *path):
            stopping = node.get("early_stopping")
            until = None
            if node.get("until"):
                with building(config, *path, "until"):
                    until = instantiate_function(node["until"])
            stages.append(_stage(node, EarlyStopping(**stopping) if stopping else None, until))
    with wired(config, w):
        for p in pipelines:
            Plan(p, graph, p.batch_names())
        for index, stage in enumerate(stages):
            stage.resolve({p.name: p for p in pipelines}, graph, index)
    return {"graph": graph, "pipelines": pipelines, "stages": stages, "schedulers": w.schedulers}


def _pipeline(name: str, node: dict, data: dict, metrics: dict, inputs: dict, batch: Any) -> Pipeline:
    updates = [Update(u["losses"], u.get("optimizers"), u.get("name")) for u in node.get("updates") or []]
    return Pipeline(
        name,
        data.get("train"),
        data.get("val"),
        data.get("test"),
        losses=node.get("losses"),
        metrics=metrics,
        metric_inputs=inputs,
        nodes=node.get("nodes"),
        updates=updates or None,
        batch=batch,
    )


def _stage(node: dict, early_stopping: Any, until: Any) -> Stage:
    return Stage(
        name=node.get("name", "main"),
        train=node.get("train"),
        val=node.get("val"),
        frozen=node.get("frozen", ()),
        epochs=node.get("epochs"),
        early_stopping=early_stopping,
        until=until,
        interleave=node.get("interleave", "round_robin"),
    )


def wiring_problems(tree: dict, where: Callable[[tuple], str]) -> list[Problem]:
    """The wiring checks of ``assemble`` (cycles, unknown tensors, ...) with placeholder models: nothing is built.

    Once the wiring holds, every monitor is checked against the metric names its plans will record (engine/monitored.py).
    """
    w = general_form(tree)
    try:
        plans = placeholder_plans(tree, w)
    except GraphError as exc:
        at = _config_path(w, exc.at)
        return [Problem(where(at), format_key(at) if at else "(root)", str(exc))]
    return monitor_problems(tree, where, w, plans)


def placeholder_plans(tree: dict, w: Wiring) -> dict[str, Plan]:
    """Each pipeline's plan over the placeholder graph, with the stages resolved against them; a wiring mistake raises GraphError."""
    graph = placeholder_graph(w)
    pipelines, plans = {}, {}
    for name, (_, node) in w.pipelines.items():
        metrics = node.get("metrics", list(tree.get("metrics") or {}) if len(w.pipelines) == 1 else [])
        inputs = {m: tree["metrics"][m]["inputs"] for m in metrics if "inputs" in (tree["metrics"][m] or {})}
        batch = node.get("batch") if isinstance(node.get("batch"), list) else None
        pipeline = _pipeline(name, node, {"val": True}, dict.fromkeys(metrics), inputs, batch)
        plans[name] = Plan(pipeline, graph, batch or _sample_names(w, node))
        pipelines[name] = pipeline
    for index, (_, node) in enumerate(w.stages):
        _stage(node, None, None).resolve(pipelines, graph, index)
    return plans


def placeholder_graph(w: Wiring) -> Graph:
    """The config's graph with placeholder models, functions and losses: its wiring, nothing instantiated."""
    losses = [
        LossTerm(name, None, node.get("inputs", ["y_hat", "y"]), node.get("weight", 1.0))
        for name, (_, node) in w.losses.items()
    ]
    optimizers = {name: OptimizerSpec(None, node["models"]) for name, (_, node) in w.optimizers.items()}
    return Graph(
        models=dict.fromkeys(w.models),
        nodes=[_node(spec, build=False) for _, spec in w.graph],
        losses=losses,
        optimizers=optimizers,
    )


def _sample_names(w: Wiring, node: dict) -> list[str] | None:
    """A dataset class's ``sample_names`` (the names of its samples' parts), when it declares them."""
    dataset = node.get("dataset")
    spec = w.datasets.get(dataset, (None, None))[1] if isinstance(dataset, str) else dataset
    try:
        names = getattr(locate(spec["class"]), "sample_names", None) if isinstance(spec, dict) else None
    except CallableNotFound:
        return None
    return list(names) if names else None


def _config_path(w: Wiring, at: tuple) -> tuple:
    """Where in the user's config an engine location (("losses", "loss"), ("graph", 0)...) lies."""
    if not at:
        return ()
    section = getattr(w, at[0], None)
    if isinstance(section, dict) and at[1] in section:
        return section[at[1]][0]
    if isinstance(section, list) and isinstance(at[1], int) and at[1] < len(section):
        return section[at[1]][0]
    return at


@contextlib.contextmanager
def building(config, *path: Any) -> Iterator[None]:
    """A component that rejects its configured arguments is bad input: name the file and key."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = (
            f"building it raised {type(exc).__name__}: {first}" if first else f"building it raised {type(exc).__name__}"
        )
        raise ConfigError([Problem(config.where(path), format_key(path) if path else "(root)", message)]) from exc


@contextlib.contextmanager
def wired(config, w: Wiring) -> Iterator[None]:
    """A wiring mistake (GraphError) names the config entry it lies in."""
    try:
        yield
    except GraphError as exc:
        at = _config_path(w, exc.at)
        raise ConfigError([Problem(config.where(at), format_key(at) if at else "(root)", str(exc))]) from exc
