"""The config's graph with placeholder models: its wiring checked without building a model, a dataset or a loss.

``expresso config --check`` and ``expresso graph`` find a cycle or a tensor
nobody writes this way, in a second, before anything is instantiated; the
plans over the placeholder graph say which metric names a run records
(monitored.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config.callables import CallableNotFound, locate
from ..config.specs import PipelineSpec
from ..config.wiring import Wiring
from ..engine.graph import Graph, OptimizerSpec
from ..engine.pipeline import Plan
from .assemble import loss_term, metric_inputs, node_of, pipeline_of, stage_of


def placeholder_plans(tree: Mapping, w: Wiring) -> dict[str, Plan]:
    """Each pipeline's plan over the placeholder graph, with the stages resolved against them; a wiring mistake raises GraphError."""
    graph = placeholder_graph(w)
    pipelines, plans = {}, {}
    for name, (_, spec) in w.pipelines.items():
        batch = spec.batch if isinstance(spec.batch, list) else None
        inputs = metric_inputs(tree, spec.metrics)
        pipeline = pipeline_of(name, spec, {"val": True}, dict.fromkeys(spec.metrics), inputs, batch)
        plans[name] = Plan(pipeline, graph, batch or _sample_names(w, spec))
        pipelines[name] = pipeline
    for index, (_, stage) in enumerate(w.stages):
        stage_of(stage, None, None).resolve(pipelines, graph, index)
    return plans


def placeholder_graph(w: Wiring) -> Graph:
    """The config's graph with placeholder models, functions and losses: its wiring, nothing instantiated."""
    # None where a model and an optimizer would be: the graph checks names and tensors, never calls them
    return Graph(
        models=dict.fromkeys(w.models),  # type: ignore[arg-type]
        nodes=[node_of(spec, build=False) for _, spec in w.graph],
        losses=[loss_term(name, node, None) for name, (_, node) in w.losses.items()],
        optimizers={name: OptimizerSpec(None, node["models"]) for name, (_, node) in w.optimizers.items()},  # type: ignore[arg-type]
    )


def _sample_names(w: Wiring, spec: PipelineSpec) -> list[str] | None:
    """A dataset class's ``sample_names`` (the names of its samples' parts), when it declares them."""
    dataset = spec.dataset
    node = w.datasets.get(dataset, (None, None))[1] if isinstance(dataset, str) else dataset
    try:
        names = getattr(locate(node["class"]), "sample_names", None) if isinstance(node, dict) else None
    except CallableNotFound:
        return None
    return list(names) if names else None
