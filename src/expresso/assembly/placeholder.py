"""The config's graph with placeholder models: its wiring checked without building a model, a dataset or a loss.

``expresso config --check`` and ``expresso graph`` find a cycle or a tensor
nobody writes this way, in a second, before anything is instantiated; the
plans over the placeholder graph say which metric names a run records
(monitored.py).
"""

from __future__ import annotations

from ..config.callables import CallableNotFound, locate
from ..config.wiring import Wiring
from ..engine.graph import Graph, LossTerm, OptimizerSpec
from ..engine.pipeline import Plan
from ..names import PREDICTION_AND_TARGET
from .assemble import node_of, pipeline_of, stage_of


def placeholder_plans(tree: dict, w: Wiring) -> dict[str, Plan]:
    """Each pipeline's plan over the placeholder graph, with the stages resolved against them; a wiring mistake raises GraphError."""
    graph = placeholder_graph(w)
    pipelines, plans = {}, {}
    for name, (_, node) in w.pipelines.items():
        metrics = node.get("metrics", list(tree.get("metrics") or {}) if len(w.pipelines) == 1 else [])
        inputs = {m: tree["metrics"][m]["inputs"] for m in metrics if "inputs" in (tree["metrics"][m] or {})}
        batch = node.get("batch") if isinstance(node.get("batch"), list) else None
        pipeline = pipeline_of(name, node, {"val": True}, dict.fromkeys(metrics), inputs, batch)
        plans[name] = Plan(pipeline, graph, batch or _sample_names(w, node))
        pipelines[name] = pipeline
    for index, (_, node) in enumerate(w.stages):
        stage_of(node, None, None).resolve(pipelines, graph, index)
    return plans


def placeholder_graph(w: Wiring) -> Graph:
    """The config's graph with placeholder models, functions and losses: its wiring, nothing instantiated."""
    losses = [
        LossTerm(name, None, node.get("inputs", list(PREDICTION_AND_TARGET)), node.get("weight", 1.0))
        for name, (_, node) in w.losses.items()
    ]
    optimizers = {name: OptimizerSpec(None, node["models"]) for name, (_, node) in w.optimizers.items()}
    return Graph(
        models=dict.fromkeys(w.models),
        nodes=[node_of(spec, build=False) for _, spec in w.graph],
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
