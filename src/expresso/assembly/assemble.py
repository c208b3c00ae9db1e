"""From the general form of a config (config/wiring.py) to a graph, its pipelines and stages: one path for every config.

The plain config arrives here as a graph of one node, so a single model and
a GAN are built by the same lines. placeholder.py runs the same wiring with
placeholder models, so ``expresso config --check`` finds a cycle or an
unknown tensor without building anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..callbacks import EarlyStopping
from ..config import instantiate
from ..config.instantiate import instantiate_function
from ..config.wiring import FRAMEWORK_KEYS, general_form, node_name
from ..engine.graph import Graph, LossTerm, Node, OptimizerSpec
from ..engine.pipeline import Pipeline, Plan, Update
from ..engine.stages import Stage
from ..names import INPUT, PREDICTION, PREDICTION_AND_TARGET
from .blame import building, wired

DEFAULT_INPUTS, DEFAULT_OUTPUTS = [INPUT], [PREDICTION]


def _plain(node: dict, section: str) -> dict:
    """A component without the engine's keys: what instantiate calls."""
    return {k: v for k, v in node.items() if k not in FRAMEWORK_KEYS[section]}


def node_of(spec: dict, build: bool) -> Node:
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
                    node.get("inputs", list(PREDICTION_AND_TARGET)),
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
            nodes.append(node_of(spec, build=True))
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
            pipelines.append(pipeline_of(name, node, data, metrics, inputs, batch))
    stages = []
    for path, node in w.stages:
        with building(config, *path):
            stopping = node.get("early_stopping")
            until = None
            if node.get("until"):
                with building(config, *path, "until"):
                    until = instantiate_function(node["until"])
            stages.append(stage_of(node, EarlyStopping(**stopping) if stopping else None, until))
    with wired(config, w):
        for p in pipelines:
            Plan(p, graph, p.batch_names())
        for index, stage in enumerate(stages):
            stage.resolve({p.name: p for p in pipelines}, graph, index)
    return {"graph": graph, "pipelines": pipelines, "stages": stages, "schedulers": w.schedulers}


def pipeline_of(name: str, node: dict, data: dict, metrics: dict, inputs: dict, batch: Any) -> Pipeline:
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


def stage_of(node: dict, early_stopping: Any, until: Any) -> Stage:
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
