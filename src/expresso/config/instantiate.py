"""Build live objects from config nodes.

The rules, and the only ways to write each thing:

- A mapping with ``class`` is built by calling that dotted path with the
  other keys as keyword arguments. Children are built first, so a value may
  itself be a component (``model: {class: Wrapper, backbone: {class: MLP}}``).
- Positional arguments go in ``_args_: [...]`` (for callables that take
  nothing else, e.g. ``torch.nn.Sequential``).
- Build later: ``_partial_: true`` returns ``functools.partial`` of the
  callable with the configured arguments, for objects that need something
  only known at run time. The engine's own sections are built later without
  being marked: it calls ``instantiate(config["optimizer"], model.parameters())``,
  and extra positional arguments given to ``instantiate`` come first.
- Mappings without ``class`` and lists are containers: their items are built.
- A component the engine calls later with its own arguments (a graph
  function or hook, a pipeline's batch adapter, a stage's ``until``, a metric
  function) is built by ``instantiate_function``: a class is built from its
  keys and its instance is what gets called; a function is bound to its keys
  (``functools.partial``) and receives the runtime arguments after them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from .callables import CallableNotFound, instances_callable, locate
from .schema import ARGS_KEY, CLASS_KEY, PARTIAL_KEY


def instantiate(node: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Build ``node``; ``args``/``kwargs`` reach the top-level callable only."""
    if isinstance(node, dict) and CLASS_KEY in node:
        return _call(node, args, kwargs)
    if args or kwargs:
        raise TypeError("extra arguments to instantiate() need a node with a 'class' key")
    if isinstance(node, dict):
        return {key: instantiate(child) for key, child in node.items()}
    if isinstance(node, list):
        return [instantiate(child) for child in node]
    return node


def instantiate_function(node: dict, /, **kwargs: Any) -> Callable:
    """What the engine calls later with runtime arguments: a class's instance built from its keys, or a function bound to them.

    ``until: {class: my.AccuracyReached, threshold: 0.99}`` builds
    ``AccuracyReached(threshold=0.99)`` and calls it with the state; calling
    the class itself with the state would make the state its first
    constructor argument. ``until: {class: my.reached, threshold: 0.99}`` is
    ``partial(reached, threshold=0.99)``. An explicit ``_partial_`` decides
    instead (``false``: a function called with its keys returns the callable).
    """
    target = _locate(node[CLASS_KEY])
    if bound_later(node, target):
        return instantiate({**node, PARTIAL_KEY: True}, **kwargs)
    built = instantiate(node, **kwargs)
    if not callable(built):
        because = (
            " (a class used as a function needs a __call__ method)"
            if inspect.isclass(target) and not instances_callable(target)
            else ""
        )
        raise TypeError(f"{node[CLASS_KEY]} built a {type(built).__name__}, which cannot be called{because}")
    return built


def bound_later(node: dict, target: Callable) -> bool:
    """Whether ``instantiate_function`` binds ``target`` to its keys (a function) rather than building it (a class)."""
    return bool(node[PARTIAL_KEY]) if PARTIAL_KEY in node else not inspect.isclass(target)


def _locate(path: str) -> Callable:
    try:
        return locate(path)
    except CallableNotFound as exc:
        hint = f"; did you mean {exc.hint}?" if exc.hint else ""
        raise ImportError(f"cannot import {path!r}: {exc}{hint}") from None


def _call(node: dict, args: tuple, kwargs: dict) -> Any:
    path = node[CLASS_KEY]
    target = _locate(path)
    positional = [*args, *(instantiate(a) for a in node.get(ARGS_KEY) or [])]
    keywords = {k: instantiate(v) for k, v in node.items() if k not in (CLASS_KEY, ARGS_KEY, PARTIAL_KEY)}
    clash = keywords.keys() & kwargs.keys()
    if clash:
        raise TypeError(f"{path}: {sorted(clash)} given both in the config and by the caller")
    keywords.update(kwargs)
    if node.get(PARTIAL_KEY):
        return functools.partial(target, *positional, **keywords)
    try:
        return target(*positional, **keywords)
    except Exception as exc:
        if hasattr(exc, "add_note"):
            exc.add_note(f"while building {path} from the config")
        raise
