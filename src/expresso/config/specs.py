"""The typed shape of the graph sections' entries: a graph node, a pipeline and its updates, a stage and its early stopping.

Declared once, here: config/wiring.py checks a config's entries against
these classes (their keys, and each value with the validator of the
settings, validation.py ``check_fields``), the general form holds them with
their defaults filled, and the assembly builds the engine's objects from
them. A field whose value names entries of another section (``names``) is
checked against the names that exist rather than by type, so its error can
list them. A default of None on a field whose annotation does not take None
is filled by the general form from the rest of the config (a node's name,
a pipeline's dataset and metrics).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..names import INPUT, PREDICTION

TENSORS = "a list of tensor names"
COMPONENT = "a component (a mapping with a 'class' key)"
COMPONENTS = "a list of components (mappings with a 'class' key)"


def entry(
    default: Any = dataclasses.MISSING,
    *,
    expected: str | None = None,
    names: tuple[str, str] | None = None,
    min: int | None = None,  # noqa: A002 - mirrors the rule's name, as settings do
    doc: str = "",
) -> Any:
    """A spec field with its rules beside its default.

    ``expected``: what an error says a value should be, where the
    annotation's own words would mislead (``a list of tensor names`` rather
    than ``a list of strings``). ``names``: (section, what one is called):
    the value names entries of that section (config/wiring.py checks them).
    """
    meta = {"expected": expected, "names": names, "min": min, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class NodeSpec:
    """One entry of ``graph``: a model (or a parameter-free function) called on named tensors (engine Node)."""

    kind: ClassVar[str] = "graph node"  # what errors call one
    name: str | None = entry(None, expected="a string", doc="default: the model's name, or the function's last part")
    model: str | None = entry(None, names=("models", "model"))
    function: dict | None = entry(None, expected=COMPONENT)
    inputs: list[str] = entry([INPUT], expected=TENSORS)
    outputs: list[str] = entry([PREDICTION], expected=TENSORS)
    detach: bool | list[str] = entry(False, expected="true, false or a list of input names")
    forward_hooks: list[dict] | None = entry([], expected=COMPONENTS)
    backward_hooks: list[dict] | None = entry([], expected=COMPONENTS)


@dataclass
class UpdateSpec:
    """One update of a pipeline's batch: backpropagate some loss terms, step some optimizers (None: the pipeline's own)."""

    kind: ClassVar[str] = "update"  # what errors call one
    losses: list[str] = entry(names=("losses", "loss term"), doc="the loss terms this update backpropagates")
    optimizers: list[str] | None = entry(None, names=("optimizers", "optimizer"))
    name: str | None = entry(None, expected="a string")


@dataclass
class PipelineSpec:
    """One entry of ``pipelines``: a data source and what the graph does with it (engine Pipeline)."""

    kind: ClassVar[str] = "pipeline"  # what errors call one
    dataset: str | dict | None = entry(
        None, names=("datasets", "dataset"), doc="a name in datasets, or a dataset component; default: the only one"
    )
    losses: list[str] | None = entry(None, names=("losses", "loss term"))
    metrics: list[str] = entry(
        None, names=("metrics", "metric"), doc="default: every metric with one pipeline, else none"
    )
    nodes: list[str] | None = entry(None, names=("nodes", "graph node"))
    batch: list[str] | dict = entry(None, expected=TENSORS)
    updates: list[UpdateSpec] | None = entry(None, expected="a list of updates")


@dataclass
class EarlyStoppingSpec:
    """A stage's ``early_stopping``: the arguments of ``expresso.callbacks.EarlyStopping``, with its defaults."""

    kind: ClassVar[str] = "early_stopping"  # what errors call one
    monitor: str = entry("val/loss")
    mode: Literal["min", "max"] = entry("min")
    patience: int = entry(3, min=0)
    min_delta: float = entry(0.0, min=0)


@dataclass
class StageSpec:
    """One entry of ``stages`` (engine Stage)."""

    kind: ClassVar[str] = "stage"  # what errors call one
    name: str = entry("main", expected="a string")
    train: list[str] | None = entry(None, names=("pipelines", "pipeline"))
    val: list[str] | None = entry(None, names=("pipelines", "pipeline"))
    frozen: list[str] = entry([], names=("models", "model"))
    epochs: int | None = entry(None, min=1, expected="an integer >= 1")
    early_stopping: EarlyStoppingSpec = entry(None)
    until: dict | None = entry(None, expected=COMPONENT)
    interleave: Literal["round_robin", "sequential"] | dict[str, int] = entry(
        "round_robin", expected="round_robin, sequential or a mapping of pipeline: batches"
    )


def keys(cls: type) -> tuple[str, ...]:
    """The keys an entry of this kind takes, in the order they are documented."""
    return tuple(f.name for f in dataclasses.fields(cls))


def nested(annotation: Any) -> tuple[Any, bool]:
    """The spec class a field holds (or None), and whether it holds a list of them (``updates``)."""
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and dataclasses.is_dataclass(arg):
            return arg, False
        if typing.get_origin(arg) is list and dataclasses.is_dataclass(typing.get_args(arg)[0]):
            return typing.get_args(arg)[0], True
    return None, False


def from_mapping(cls: type, node: dict) -> Any:
    """The spec of a checked entry: its keys as given, nested specs built, the rest defaults."""
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in node.items():
        inner, many = nested(hints[key])
        if inner is not None and value is not None:
            value = [from_mapping(inner, item) for item in value] if many else from_mapping(inner, value)
        values[key] = value
    return cls(**values)
