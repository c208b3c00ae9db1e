"""The docs' reference sections, generated from the source at build time: an mkdocs hook (mkdocs.yml ``hooks:``).

A page's line ``<!-- reference: NAME -->`` is replaced by what ``SECTIONS[NAME]`` renders from the code
itself: the config's root keys (``expresso.config.schema.ROOT_DOCS``), every ``trainer`` and ``dataloader``
setting with its type, default, rules and doc (``expresso.settings``, the dataclasses the validator reads),
the loop's events (``expresso.engine.Event``), the loop as trainer.py's docstring draws it, and the built-in
callbacks and loggers with their arguments. A hand copy would drift; these cannot. An unknown NAME, or a root
key without a line in ROOT_DOCS, fails the build.

``python scripts/docs_reference.py NAME`` prints one section (what the page gets).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- reference: ([\w-]+) -->$", re.M)


def _src() -> None:
    """The checkout's package, not an installed copy: the docs describe the code beside them."""
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))


def _value(value: object) -> str:
    """A default as it is written in a YAML config."""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _type(annotation: str) -> str:
    """A field's annotation as a reader writes the value: ``int | None`` -> int or null; Literal -> its choices."""
    annotation = re.sub(
        r"Literal\[(.*?)\]", lambda m: " | ".join(c.strip().strip("'\"") for c in m.group(1).split(",")), annotation
    )
    return " or ".join(f"`{part.strip()}`".replace("`None`", "`null`") for part in annotation.split("|"))


def _cell(text: str) -> str:
    """Text for one table cell, on one line: reST's double backticks as Markdown's; outside code, pipes and angle
    brackets escaped (a pipe would end the cell, ``<run id>`` would be read as HTML). A code span keeps its text
    as written, so the docs this reads keep pipes out of them."""
    parts = text.replace("``", "`").replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[i] = parts[i].replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _rules(field: dataclasses.Field) -> str:
    meta = field.metadata
    rules = []
    if meta.get("min") is not None:
        rules.append(f"at least {meta['min']}")
    if meta.get("max") is not None:
        rules.append(f"at most {meta['max']}")
    if meta.get("reserved"):
        rules.append("must stay `null`")
    return ", ".join(rules)


def settings(section: str) -> str:
    """Every setting of a typed section: key, type, default, rules, doc."""
    _src()
    from expresso.config.schema import SETTINGS

    cls = SETTINGS[section]
    lines = [
        f"`{section}:` {_cell(cls.__doc__ or '')}",
        "",
        "| key | type | default | rules | what it does |",
        "|---|---|---|---|---|",
    ]
    for field in dataclasses.fields(cls):
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        lines.append(
            f"| `{section}.{field.name}` | {_cell(_type(str(field.type)))} | {_value(default)} "
            f"| {_cell(_rules(field))} | {_cell(field.metadata['doc'])} |"
        )
    for key, target in getattr(cls, "moved", {}).items():
        lines.append(f"| `{section}.{key}` | | | moved | refused here: write it as `{target}` |")
    return "\n".join(lines)


def root_keys() -> str:
    """Every root key of a config, with its kind and what it is for."""
    _src()
    from expresso.config import schema

    missing = [key for key in schema.ROOT_KEYS if key not in schema.ROOT_DOCS]
    if missing:
        raise ValueError(f"config keys without a line in expresso.config.schema.ROOT_DOCS: {missing}")

    def kind(key: str) -> str:
        if key in schema.COMPONENTS:
            return "component" + (" or a list of them" if key == "scheduler" else "")
        if key in schema.COLLECTIONS:
            return "list of components" if schema.COLLECTIONS[key] is list else "name -> component"
        if key in schema.STRUCTURES:
            return "wiring (list)" if schema.STRUCTURES[key] is list else "wiring (mapping)"
        if key in schema.SETTINGS:
            return "settings"
        return "values" if key in schema.VALUES else "string"

    lines = ["| key | kind | what it is |", "|---|---|---|"]
    lines += [f"| `{key}` | {kind(key)} | {_cell(schema.ROOT_DOCS[key])} |" for key in schema.ROOT_KEYS]
    return "\n".join(lines)


def events() -> str:
    """Every event, in the order the loop declares them, with what fires it and what ``state`` holds then."""
    _src()
    from expresso.engine import Event

    lines = ["| event | handler | fired when, and what `state` holds |", "|---|---|---|"]
    lines += [f"| `{event.name}` | `on_{event.value}` | {_cell(event.__doc__ or '')} |" for event in Event]
    return "\n".join(lines)


def loop() -> str:
    """The loop as engine/trainer.py's module docstring draws it, every event where it fires."""
    _src()
    import expresso.engine.trainer as trainer

    doc = trainer.__doc__ or ""
    drawing = doc.split("::\n", 1)[1].split("\nControl flow", 1)[0]
    return "```text\n" + inspect.cleandoc(drawing) + "\n```"


def _arguments(cls: type) -> str:
    parameters = [
        p for p in inspect.signature(cls).parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return ", ".join(
        f"`{p.name}`" if p.default is inspect.Parameter.empty else f"`{p.name}={p.default!r}`" for p in parameters
    )


def _summary(obj: object) -> str:
    return (inspect.getdoc(obj) or "").split("\n\n", 1)[0].replace("\n", " ")


def callbacks() -> str:
    """Every built-in callback: its arguments with their defaults, its docstring's first paragraph."""
    _src()
    import expresso.callbacks as module
    from expresso.engine import Callback

    lines = ["| callback | arguments (default) | what it does |", "|---|---|---|"]
    for name in module.__all__:
        cls = getattr(module, name)
        if isinstance(cls, type) and issubclass(cls, Callback):
            link = f"[`{name}`][expresso.callbacks.{name}]"
            lines.append(f"| {link} | {_cell(_arguments(cls)) or 'none'} | {_cell(_summary(cls))} |")
    return "\n".join(lines)


def loggers() -> str:
    """Every logger a config may name in one word: its class, its extra and its options."""
    _src()
    from importlib import import_module

    from expresso.config.loggers import KNOWN_LOGGERS

    lines = ["| name | class | install | options (default) |", "|---|---|---|---|"]
    for name, known in KNOWN_LOGGERS.items():
        if known.cls is None:
            lines.append(f"| `{name}` | (metrics.csv, the `History` callback) | included | none |")
            continue
        module, _, attribute = known.cls.rpartition(".")
        cls = getattr(import_module(module), attribute)
        public = f"expresso.loggers.{attribute}"
        lines.append(
            f"| `{name}` | [`{public}`][{public}] | `pip install torch-expresso[{known.extra}]` "
            f"| {_cell(_arguments(cls)) or 'none'} |"
        )
    return "\n".join(lines)


SECTIONS: dict[str, Callable[[], str]] = {
    "root-keys": root_keys,
    "trainer": lambda: settings("trainer"),
    "dataloader": lambda: settings("dataloader"),
    "events": events,
    "loop": loop,
    "callbacks": callbacks,
    "loggers": loggers,
}


def render(markdown: str, where: str = "page") -> str:
    """``markdown`` with each reference marker replaced by its generated section."""

    def section(match: re.Match) -> str:
        name = match.group(1)
        if name not in SECTIONS:
            raise ValueError(f"{where}: unknown reference section {name!r}; expected one of {sorted(SECTIONS)}")
        return SECTIONS[name]()

    return MARKER.sub(section, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """mkdocs calls this for every page before rendering it."""
    return render(markdown, page.file.src_path)


if __name__ == "__main__":
    print(SECTIONS[sys.argv[1]]())
