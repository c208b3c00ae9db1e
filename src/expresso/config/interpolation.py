"""``${key.path}`` and ``${env:NAME[,default]}`` interpolation, through OmegaConf.

Interpolations resolve after all files and overrides are composed, so
``${task.num_classes}`` follows ``task=tasks/parity.yaml`` on the command line.
OmegaConf is imported only when a tree contains ``${``: most configs never
pay for it. Each interpolation is resolved on its own so that every broken one
is reported, with the file that wrote it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from .errors import Problem, format_key, suggest

_MISSING = object()


class MissingEnvironmentVariable(KeyError):
    """``${env:NAME}`` names a variable that is not set and gives no default; ``args[0]`` is NAME.

    Raised inside OmegaConf's resolver, so the error report can find it in
    the exception chain and name the variable instead of OmegaConf's wording.
    """


def _env(name: str, default: Any = _MISSING) -> Any:
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is not _MISSING:
        return default
    raise MissingEnvironmentVariable(name)


def _omegaconf():
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("env"):
        register = getattr(OmegaConf, "register_resolver", None) or OmegaConf.register_new_resolver
        register("env", _env)
    return OmegaConf


def has_interpolation(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(has_interpolation(v) for v in value.values())
    if isinstance(value, list):
        return any(has_interpolation(v) for v in value)
    return False


def resolve(tree: dict, where: Callable[[tuple], str]) -> tuple[dict, list[Problem]]:
    """The tree with every interpolation resolved, and the problems found."""
    if not has_interpolation(tree):
        return tree, []
    from omegaconf.errors import OmegaConfBaseException

    OmegaConf = _omegaconf()
    problems = _syntax_problems(tree, where)
    if problems:  # OmegaConf.create stops at the first malformed interpolation: report every one first
        return tree, problems
    cfg = OmegaConf.create(tree)
    for path, raw in _interpolated_leaves(tree, ()):
        try:
            node = cfg
            for part in path:
                node = node[part]
            if OmegaConf.is_config(node):  # a resolver may return a container, even one holding itself (oc.deprecated)
                OmegaConf.to_container(node, resolve=True)
        except (
            OmegaConfBaseException,
            RecursionError,
        ) as exc:  # a resolver that loops (oc.deprecated) overflows the stack
            message, hint = _explain(raw, exc, tree)
            problems.append(Problem(where(path), format_key(path), message, hint))
    if problems:
        return tree, problems
    return OmegaConf.to_container(cfg, resolve=True), []


def _syntax_problems(tree: dict, where: Callable[[tuple], str]) -> list[Problem]:
    """Interpolations that do not parse (``${``, ``${}``, ``${a``): what OmegaConf.create would raise on."""
    from omegaconf.errors import OmegaConfBaseException

    OmegaConf = _omegaconf()
    problems = []
    for path, raw in _interpolated_leaves(tree, ()):
        try:
            OmegaConf.create({"value": raw})
        except OmegaConfBaseException as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            message = f"interpolation {raw!r} is not valid: {first_line}"
            problems.append(Problem(where(path), format_key(path), message, "\\${ for a literal ${"))
    return problems


_REFERENCE = re.compile(r"(?<!\\)\$\{([^}]*)\}")


def key_interpolations(tree: dict) -> list[tuple[tuple, str]]:
    """The values that follow other keys of the config (``T_max: ${trainer.max_epochs}``), before resolution.

    Only references to config keys count; a resolver's value (``${env:DATA}``)
    is a fact of the machine it ran on, kept as resolved. A resume puts these
    expressions back, so a value that followed a key follows it again.
    """
    found = []
    for path, raw in _interpolated_leaves(tree, ()):
        references = _REFERENCE.findall(raw)
        if references and "\\${" not in raw and all(":" not in reference for reference in references):
            found.append((path, raw))
    return found


def _interpolated_leaves(value: Any, path: tuple):
    if isinstance(value, str) and "${" in value:
        yield path, value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from _interpolated_leaves(child, path + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _interpolated_leaves(child, path + (i,))


def _explain(raw: str, exc: Exception, tree: dict) -> tuple[str, str | None]:
    if isinstance(exc, RecursionError):
        return f"interpolation {raw!r} cannot be resolved: it refers to itself, or to a node that contains it", None
    cause = _find_in_chain(exc, MissingEnvironmentVariable)
    if cause is not None:
        name = cause.args[0]
        return (
            f"interpolation {raw!r} needs environment variable {name!r}, which is not set (give a default: ${{env:{name},default}})",
            None,
        )
    missing = re.search(r"Interpolation key '([^']+)' not found", str(exc))
    if missing:
        key = missing.group(1)
        return f"interpolation {raw!r} refers to {key!r}, which is not in the config", _suggest_key(key, tree)
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"interpolation {raw!r} cannot be resolved: {first_line}", None


def _find_in_chain(exc: BaseException, kind: type) -> BaseException | None:
    seen = set()
    link: BaseException | None = exc  # walks the chain of causes; None past its end
    while link is not None and id(link) not in seen:
        if isinstance(link, kind):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def _suggest_key(dotted: str, tree: dict) -> str | None:
    parts = dotted.split(".")
    node: Any = tree
    for depth, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict):
            prefix = ".".join(parts[:depth] + [""])
            return suggest(part, [str(k) for k in node], "'" + prefix.replace("{", "{{").replace("}", "}}") + "{}'")
        else:
            return None
    return None


def escape(value: Any) -> Any:
    """Escape literal ``${`` so that printing a resolved tree and loading it again is idempotent."""
    if isinstance(value, str):
        # OmegaConf reads 2n+1 backslashes before "${" as n literal backslashes and a literal "${".
        return re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", value)
    if isinstance(value, dict):
        return {key: escape(child) for key, child in value.items()}
    if isinstance(value, list):
        return [escape(child) for child in value]
    return value
