"""``expresso graph``: what a config wires together, as text and, with ``--output``, as a picture.

A config of several models (models, graph, losses, optimizers, pipelines,
stages) is hard to follow as YAML: which tensor flows where, which optimizer
steps which model, what each stage trains. This command says it in data
order without building a model or a dataset: the config is checked as
``expresso config --check`` checks it and the graph is built with
placeholder models, as the wiring check does. matplotlib (the ``plots``
extra) is imported only to draw.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from . import UsageError

FORMATS = (".svg", ".png")
# kind -> (box style, face colour); a model's frame takes its optimizer's colour
STYLES = {
    "tensor": ("round,pad=0.3", "#dbe9f6"),
    "model": ("square,pad=0.4", "#fde3c0"),
    "function": ("square,pad=0.4", "#eeeeee"),
    "loss": ("sawtooth,pad=0.4", "#f6cccc"),
}
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "graph",
        parents=[common],
        help="describe the config's models, graph, losses, optimizers, pipelines and stages (builds nothing)",
        description=(
            "Check the config as `config --check` does, then print its graph in data order with its losses, optimizers, "
            "pipelines and stages; --output also draws it (needs matplotlib: the `plots` extra)."
        ),
    )
    parser.add_argument("config", metavar="CONFIG", help="a .yaml, .yml, .json or .py config file")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="overrides: key.sub=value, +new.key=value, ~key"
    )
    parser.add_argument("--output", metavar="FILE", help="also draw the graph to FILE.svg or FILE.png")
    return parser


def run(args) -> int:
    from ..assembly import check
    from ..assembly.blame import wired
    from ..assembly.placeholder import placeholder_graph
    from ..config import load_config

    output = Path(args.output) if args.output else None
    if output is not None:
        if output.suffix.lower() not in FORMATS:
            raise UsageError(
                f"--output {args.output}: unsupported suffix {output.suffix or '(none)'!r}; expected .svg or .png"
            )
        if not output.parent.is_dir():
            raise UsageError(f"--output {args.output}: folder {str(output.parent)!r} not found")
        try:
            import matplotlib
        except ImportError:
            raise UsageError("--output needs matplotlib: pip install 'torch-expresso[plots]'") from None
    config = check(load_config(args.config, args.overrides, check=True))
    tree = config.to_dict()
    wiring = config.wiring
    with wired(config, wiring):
        built = placeholder_graph(wiring)
    print(describe(tree, wiring, built))
    if output is not None:
        with matplotlib.rc_context(
            {"svg.fonttype": "none", "svg.hashsalt": "expresso"}
        ):  # text stays text; same file every time
            draw(tree, wiring, built, output)
        print(f"written: {output}")
    return 0


def _cls(node) -> str:
    return str(node.get("class")) if isinstance(node, dict) else str(node)


def runs(node, spec) -> str:
    """What a node calls: its name, and the model or function when the name does not say it."""
    if node.function is not None:
        return f"{node.name} (function {_cls(spec.function)})"
    return node.name if node.name == node.model else f"{node.name} ({node.model})"


def flow(node) -> str:
    reads = ", ".join(t + (" (detached)" if node.detached(t) else "") for t in node.inputs)
    return f"{reads} -> {', '.join(node.outputs)}"


def describe(tree: dict, w, g) -> str:
    """The plain-text description: models, nodes in data order, losses, optimizers, pipelines, stages."""
    lines = ["models: " + ", ".join(f"{name} ({_cls(node)})" for name, (_, node) in w.models.items())]
    if w.datasets:
        lines.append("datasets: " + ", ".join(f"{name} ({_cls(node)})" for name, (_, node) in w.datasets.items()))
    lines.append("nodes (data order):")
    width = max(len(runs(g.nodes[i], w.graph[i][1])) for i in g.order)
    for i in g.order:
        spec = w.graph[i][1]
        hooks = [
            f"{kind} hook {_cls(h)}" for kind in ("forward", "backward") for h in getattr(spec, f"{kind}_hooks") or ()
        ]
        lines.append(
            f"  {runs(g.nodes[i], spec):<{width}}  {flow(g.nodes[i])}" + (f"  [{', '.join(hooks)}]" if hooks else "")
        )
    lines.append("losses: " + ", ".join(f"{t.name}({', '.join(t.inputs)}) x{float(t.weight)}" for t in g.losses))
    optimizers = []
    for name, (_, node) in w.optimizers.items():
        extras = [
            f"group {', '.join(group['models'])}: " + " ".join(f"{k}={v}" for k, v in group.items() if k != "models")
            for group in node.get("param_groups") or []
        ]
        extras += [f"{key} {node[key]}" for key in ("clip_grad_norm", "clip_grad_value") if node.get(key) is not None]
        for entry in w.schedulers.get(name, ((), []))[1]:
            extras.append(
                f"scheduler {_cls(entry)}"
                + (f" per {entry['interval']}" if isinstance(entry, dict) and "interval" in entry else "")
            )
        optimizers.append(f"{name} ({', '.join([_cls(node)] + extras)}) over {', '.join(node['models'])}")
    lines.append("optimizers: " + "; ".join(optimizers))
    lines.append("pipelines: " + "; ".join(pipeline(name, node, tree, w) for name, (_, node) in w.pipelines.items()))
    lines.append("stages: " + "; ".join(stage(i, node, tree, w) for i, (_, node) in enumerate(w.stages)))
    return "\n".join(lines)


def pipeline(name: str, spec, tree: dict, w) -> str:
    data = spec.dataset
    updates = [
        f"{u.name or i + 1}({', '.join(u.losses)} -> {', '.join(u.optimizers or ['auto'])})"
        for i, u in enumerate(spec.updates or [])
    ]
    parts = ["updates " + ", ".join(updates) if updates else "losses " + ", ".join(spec.losses or list(w.losses))]
    if spec.metrics:
        inputs = {m: tree["metrics"][m].get("inputs") for m in spec.metrics}
        parts.append(
            "metrics " + ", ".join(m + (f"({', '.join(inputs[m])})" if inputs[m] else "") for m in spec.metrics)
        )
    if spec.nodes:
        parts.append("nodes " + ", ".join(spec.nodes))
    if spec.batch:
        parts.append("batch " + (_cls(spec.batch) if isinstance(spec.batch, dict) else ", ".join(spec.batch)))
    return f"{name} [{_cls(data) if isinstance(data, dict) else data}]: " + ", ".join(parts)


def stage(index: int, spec, tree: dict, w) -> str:
    train = spec.train or list(w.pipelines)
    parts = ["train " + ", ".join(train)]
    if spec.val is not None:
        parts.append("val " + ", ".join(spec.val))
    if spec.frozen:
        parts.append("frozen " + ", ".join(spec.frozen))
    mode = spec.interleave
    if len(train) > 1:
        parts.append(
            "interleave " + (" ".join(f"{k}:{v}" for k, v in mode.items()) if isinstance(mode, dict) else mode)
        )
    parts.append(
        f"{spec.epochs} epochs"
        if spec.epochs
        else f"{(tree.get('trainer') or {}).get('max_epochs')} epochs = trainer.max_epochs"
    )
    stopping = spec.early_stopping
    if stopping is not None:  # its monitor, and the settings that differ from EarlyStopping's defaults
        default = type(stopping)()
        changed = [
            f"{f.name}={getattr(stopping, f.name)}"
            for f in dataclasses.fields(stopping)
            if f.name != "monitor" and getattr(stopping, f.name) != getattr(default, f.name)
        ]
        parts.append(f"early stopping {stopping.monitor} " + " ".join(changed))
    if spec.until:
        parts.append(f"until {_cls(spec.until)}")
    return f"{index + 1} {spec.name} ({', '.join(parts)})"


def draw(tree: dict, w, g, path: Path) -> None:
    """Boxes in layers left to right (a box's layer: the longest path to it from the batch's tensors), arrows along the data."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    layer, items, edges = {}, {}, []  # key -> layer; key -> (kind, label); (from, to, dashed)

    def read(key, tensors, detached=()):
        for t in tensors:
            if ("tensor", t) not in items:  # a tensor nobody writes comes from the batch
                items[("tensor", t)], layer[("tensor", t)] = ("tensor", t), 0
            edges.append((("tensor", t), key, t in detached))
        layer[key] = 1 + max((layer[("tensor", t)] for t in tensors), default=-1)

    for i in g.order:
        node = g.nodes[i]
        key = ("node", node.name)
        label = node.name if node.name == node.model or node.model is None else f"{node.name}\n({node.model})"
        items[key] = ("function" if node.function is not None else "model", label)
        read(key, node.inputs, [t for t in node.inputs if node.detached(t)])
        for t in node.outputs:
            items[("tensor", t)], layer[("tensor", t)] = ("tensor", t), layer[key] + 1
            edges.append((key, ("tensor", t), False))
    for term in g.losses:
        key = ("loss", term.name)
        items[key] = ("loss", f"{term.name} x{float(term.weight)}")
        read(key, term.inputs)
    columns: dict[int, list] = {}
    for key in items:
        columns.setdefault(layer[key], []).append(key)
    rows = max(len(keys) for keys in columns.values())
    position = {key: (x, (len(keys) - 1) / 2 - row) for x, keys in columns.items() for row, key in enumerate(keys)}

    owner: dict[str, int] = {}  # model -> index of its first optimizer: the colour of its frame
    for i, (_, (_, node)) in enumerate(w.optimizers.items()):
        for m in node["models"]:
            owner.setdefault(m, i)
    fig = Figure(figsize=(1.9 * len(columns) + 3.5, 0.9 * rows + 1.2))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(-rows / 2 - 0.6, rows / 2 + 0.6)
    boxes = {}
    for key, (kind, label) in items.items():
        style, face = STYLES[kind]
        model = g.nodes[g.node_index[key[1]]].model if key[0] == "node" else None
        edge = COLOURS[owner[model] % len(COLOURS)] if model in owner else "0.3"
        boxes[key] = ax.text(
            *position[key],
            label,
            ha="center",
            va="center",
            fontsize=9,
            bbox=dict(boxstyle=style, fc=face, ec=edge, lw=2 if model in owner else 1),
        )
    for a, b, detached in edges:
        span, (xa, ya), (xb, yb) = layer[b] - layer[a], position[a], position[b]
        bend = 0.0 if span < 2 else (-0.5 if ya + yb >= 0 else 0.5) / span  # long edges arc around the boxes between
        ax.annotate(
            "",
            xy=(xb, yb),
            xytext=(xa, ya),
            arrowprops=dict(
                arrowstyle="-|>",
                color="0.35",
                ls="--" if detached else "-",
                connectionstyle=f"arc3,rad={bend}",
                patchA=boxes[a].get_bbox_patch(),
                patchB=boxes[b].get_bbox_patch(),
                shrinkA=1,
                shrinkB=1,
            ),
        )
    kinds = {kind for kind, _ in items.values()}
    handles: list = [Patch(fc=face, ec="0.3", label=kind) for kind, (_, face) in STYLES.items() if kind in kinds]
    handles += [Line2D([], [], color="0.35", ls="--", label="detached input")] if any(d for _, _, d in edges) else []
    handles += [
        Patch(fc="white", ec=COLOURS[i % len(COLOURS)], lw=2, label=f"optimizer {name}: {', '.join(node['models'])}")
        for i, (name, (_, node)) in enumerate(w.optimizers.items())
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(tree.get("name") or "graph", fontsize=10)
    fig.savefig(path, bbox_inches="tight", metadata={"Date": None} if path.suffix.lower() == ".svg" else None)
