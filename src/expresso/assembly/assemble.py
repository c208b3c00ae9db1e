"""From the general form of a config (config/wiring.py) to a graph, its pipelines and stages: one path for every config.

The plain config arrives here as a graph of one node, so a single model and
a GAN are built by the same lines. placeholder.py runs the same wiring with
placeholder models, so ``expresso config --check`` finds a cycle or an
unknown tensor without building anything.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from ..callbacks import EarlyStopping
from ..config import instantiate
from ..config.instantiate import instantiate_function
from ..config.specs import NodeSpec, PipelineSpec, StageSpec
from ..config.wiring import FRAMEWORK_KEYS
from ..engine.graph import Graph, LossTerm, Node, OptimizerSpec
from ..engine.pipeline import Pipeline, Plan, Update
from ..engine.stages import Stage
from .blame import building, wired


def _plain(node: dict, section: str) -> dict:
    """A component without the engine's keys: what instantiate calls."""
    return {k: v for k, v in node.items() if k not in FRAMEWORK_KEYS[section]}


def node_of(spec: NodeSpec, build: bool) -> Node:
    """The engine's node for a graph entry; without ``build`` its function and hooks are placeholders."""
    function = spec.function
    return Node(
        model=spec.model,
        function=(instantiate_function(function) if build else _placeholder) if function is not None else None,
        inputs=spec.inputs,
        outputs=spec.outputs,
        name=spec.name,
        detach=spec.detach,
        forward_hooks=[instantiate_function(h) for h in spec.forward_hooks or ()] if build else (),
        backward_hooks=[instantiate_function(h) for h in spec.backward_hooks or ()] if build else (),
    )


def _placeholder(*args: Any) -> None:
    """Stands in for a function node while only the wiring is checked."""


def loss_term(name: str, node: dict, fn: Any) -> LossTerm:
    """A loss entry (its inputs filled by the general form) as the engine's term, computed by ``fn``."""
    return LossTerm(name, fn, node["inputs"], node.get("weight", 1.0))


def metric_inputs(tree: Mapping, names: list[str]) -> dict[str, list[str]]:
    """The two tensors each of these metrics reads, where its config names them (else the engine's default)."""
    return {m: tree["metrics"][m]["inputs"] for m in names if "inputs" in tree["metrics"][m]}


def _param_groups(node: dict, models: Mapping[str, Any]) -> list:
    """The optimizer's parameters: its models', with ``param_groups`` carrying their own options; the rest in one default group."""
    groups: list[dict] = []
    taken: set[int] = set()
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
    *,
    optimizers_too: bool = True,
) -> dict[str, Any]:
    """Build models, graph, optimizers, pipelines and stages; errors name the file and key of the entry at fault.

    ``optimizers_too=False`` (eval and predict: nothing steps) leaves the optimizers out: building the
    first imports torch._dynamo (torch.optim's add_param_group is wrapped by it), over a second of each command.
    """
    w = copy.deepcopy(config.wiring)  # the built objects get entries of their own: a config may be built twice
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
            losses.append(loss_term(name, node, instantiate(_plain(node, "losses"))))
    optimizers = {}
    for name, (path, node) in w.optimizers.items() if optimizers_too else ():
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
    for name, (path, spec) in w.pipelines.items():
        with building(config, *path):
            dataset = spec.dataset
            data = datasets[dataset] if isinstance(dataset, str) else build_datasets(dataset) if dataset else {}
            metrics = {m: build_metric(_plain(tree["metrics"][m], "metrics"), ("metrics", m)) for m in spec.metrics}
            batch = spec.batch
            if isinstance(batch, dict):
                with building(config, *path, "batch"):
                    batch = instantiate_function(batch)
            pipelines.append(pipeline_of(name, spec, data, metrics, metric_inputs(tree, spec.metrics), batch))
    stages = []
    for path, spec in w.stages:
        with building(config, *path):
            stopping = spec.early_stopping
            until = None
            if spec.until:
                with building(config, *path, "until"):
                    until = instantiate_function(spec.until)
            stages.append(stage_of(spec, EarlyStopping(**dataclasses.asdict(stopping)) if stopping else None, until))
    with wired(config, w):
        for p in pipelines:
            Plan(p, graph, p.batch_names())
        for index, stage in enumerate(stages):
            stage.resolve({p.name: p for p in pipelines}, graph, index)
    return {"graph": graph, "pipelines": pipelines, "stages": stages, "schedulers": w.schedulers}


def pipeline_of(name: str, spec: PipelineSpec, data: dict, metrics: dict, inputs: dict, batch: Any) -> Pipeline:
    """The engine's pipeline for a pipelines entry, over built (or placeholder) data, metrics and batch adapter."""
    updates = [Update(u.losses, u.optimizers, u.name) for u in spec.updates or []]
    return Pipeline(
        name,
        data.get("train"),
        data.get("val"),
        data.get("test"),
        losses=spec.losses,
        metrics=metrics,
        metric_inputs=inputs,
        nodes=spec.nodes,
        updates=updates or None,
        batch=batch,
    )


def stage_of(spec: StageSpec, early_stopping: Any, until: Any) -> Stage:
    """The engine's stage for a stages entry, with its built (or no) stop conditions."""
    return Stage(
        name=spec.name,
        train=spec.train,
        val=spec.val,
        frozen=spec.frozen,
        epochs=spec.epochs,
        early_stopping=early_stopping,
        until=until,
        interleave=spec.interleave,
    )
