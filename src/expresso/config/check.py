"""The pre-flight check: import every ``class`` and check its keywords, before anything runs.

This is what ``expresso config --check`` prints and ``expresso train`` runs
first: a misspelt keyword should cost a second, not a crashed run an hour
in. All problems are collected in one pass. Everything here is torch-free;
what only the engine can tell (the device, the graph's wiring, the
monitored names) is checked after this passes, by ``expresso.assembly.check``.

The dataset's defaulted arguments are written into the checked config, so
the record of a run names its whole data pipeline even if a default changes
in a later version. It also performs task injection: for each component under ``dataset``,
``model`` and ``metrics``, every key of ``task`` that the callable takes as
a named parameter, and that the config does not set, is written into the
component, so the resolved config shows the value that will be used.

Arguments the engine supplies when it builds a component ("build later") do
not have to be in the config: an optimizer's first argument (the model's
parameters), a scheduler's first argument (its optimizer), a dataset's
``split`` (train, val or test), and for metrics, callbacks and ``step`` the
runtime objects injected by name (``model``, ``task``, ``run_dir``, ``logger``).

A function slot (a graph node's ``function`` and hooks, a pipeline's
``batch`` adapter, a stage's ``until``, a metric) holds something the engine
calls later with its own arguments (config/instantiate.py
``instantiate_function``): a function there is only bound to its keys, so its
required arguments are the runtime's; a class there is built from its keys
(its constructor's required arguments are checked as for any component) and
must define ``__call__``. A metric function's first two parameters are the
prediction and the target: task values are not injected into them (the
digits task's ``target: digit`` must not become ``accuracy(output, target)``'s
target).

A class that declares ``extras_needed`` (a Callback attribute: the
libraries it imports lazily and the extras that install them) is refused
when one of them is missing, with the ``pip install`` line, before any run
folder exists.
"""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

from .callables import CallableNotFound, instances_callable, locate
from .errors import Problem, close_matches, format_key, suggest
from .instantiate import bound_later
from .loggers import logger_problems, missing_extra
from .schema import ARGS_KEY, CLASS_KEY, PARTIAL_KEY, RESERVED_KEYS, STRUCTURES, TASK_TARGETS
from .state_keys import shared_state_key_problems
from .validation import UNIONS, check_type
from .wiring import framework_keys

FIRST_ARGUMENT = "<first>"
INJECTED_BY_NAME = ("model", "task", "run_dir", "logger")
SUPPLIED_BY_ENGINE: dict[str, tuple[str, ...]] = {
    "optimizer": (FIRST_ARGUMENT,),
    "optimizers": (FIRST_ARGUMENT,),
    "scheduler": (FIRST_ARGUMENT,),
    "dataset": ("split",),
    "datasets": ("split",),
    "metrics": INJECTED_BY_NAME,
    "callbacks": INJECTED_BY_NAME,
    "step": INJECTED_BY_NAME,
    "loggers": INJECTED_BY_NAME,
}
# Sections whose entries (metrics.acc, callbacks.0, scheduler.1) are components of their own.
_LISTED = ("metrics", "callbacks", "loggers", "scheduler", "optimizers", "datasets", "models", "losses")
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def check(
    tree: dict, where: Callable[[tuple], str], supplied: Mapping[tuple, Collection[str]] | None = None
) -> tuple[dict, list[Problem]]:
    """A copy of ``tree`` with task values injected, and every problem found.

    ``supplied``: per component path, the arguments the run supplies besides the config (a profile's logger
    options): a required one of them is not missing.
    """
    tree = copy.deepcopy(tree)
    task = tree.get("task")
    if not isinstance(task, dict):  # validation reports a task that is no mapping
        task = {}
    problems: list[Problem] = []
    for path, node in list(_class_nodes(tree, ())):
        if not path:  # a `class` key at the root is no component: validation reports it as an unknown top-level key
            continue
        inject = task if path[0] in TASK_TARGETS else {}
        _check_node(node, path, inject, where, problems, (supplied or {}).get(path, ()))
    _plateaus_follow_trainer_mode(tree, where, problems)
    problems += logger_problems(tree, where)
    problems += shared_state_key_problems(tree, where)
    return tree, problems


def _plateaus_follow_trainer_mode(tree: dict, where: Callable[[tuple], str], problems: list[Problem]) -> None:
    """A ReduceLROnPlateau watches trainer.monitor, so it takes trainer.mode: written in where the config leaves it out.

    Left to its own default (``min``), it would halve the rate right after an
    epoch that improved a ``max`` metric.
    """
    trainer = tree.get("trainer")
    if not isinstance(trainer, dict):
        trainer = {}
    mode = trainer.get("mode")
    if mode not in ("min", "max"):  # validation reports it
        return
    for path, node in _scheduler_nodes(tree):
        try:
            target = locate(node[CLASS_KEY])
        except CallableNotFound:  # reported by _check_node
            continue
        if not _is_plateau(target):
            continue
        if "mode" not in node:
            node["mode"] = mode
        elif node["mode"] != mode:
            problems.append(
                Problem(
                    where(path + ("mode",)),
                    format_key(path + ("mode",)),
                    f"received {node['mode']!r}, but trainer.mode is {mode!r}: ReduceLROnPlateau watches trainer.monitor"
                    f" ({trainer.get('monitor')!r}), so it takes trainer.mode; leave its mode out to follow trainer.mode",
                )
            )


def _scheduler_nodes(tree: dict):
    """Every scheduler component: ``scheduler`` and ``optimizers.<name>.scheduler``, each one or a list."""
    places: list[tuple[tuple, Any]] = [(("scheduler",), tree.get("scheduler"))]
    optimizers = tree.get("optimizers")
    if isinstance(optimizers, dict):
        places += [
            (("optimizers", name, "scheduler"), node.get("scheduler"))
            for name, node in optimizers.items()
            if isinstance(node, dict)
        ]
    for path, value in places:
        for at, node in ((path + (i,), v) for i, v in enumerate(value)) if isinstance(value, list) else [(path, value)]:
            if isinstance(node, dict) and isinstance(node.get(CLASS_KEY), str):
                yield at, node


def _is_plateau(target: Any) -> bool:
    """Whether a class is (a subclass of) torch's ReduceLROnPlateau, told by name: the config layer imports no torch."""
    return any(
        c.__module__ == "torch.optim.lr_scheduler" and c.__name__ == "ReduceLROnPlateau"
        for c in getattr(target, "__mro__", ())
    )


def _class_nodes(value: Any, path: tuple):
    """Every mapping with a ``class`` key, parents before children."""
    if isinstance(value, dict):
        if isinstance(value.get(CLASS_KEY), str):
            yield path, value
        for key, child in value.items():
            yield from _class_nodes(child, path + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _class_nodes(child, path + (i,))


def signature_of(target: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(target)
    except (ValueError, TypeError):  # some builtins have none: nothing to check against
        return None


def _check_node(
    node: dict, path: tuple, task: dict, where, problems: list[Problem], given_later: Collection[str] = ()
) -> None:
    def report(key_path: tuple, message: str, hint: str | None = None) -> None:
        problems.append(Problem(where(key_path), format_key(key_path), message, hint))

    name = node[CLASS_KEY]
    try:
        target = locate(name)
    except CallableNotFound as exc:
        report(path + (CLASS_KEY,), f"cannot import {name!r}: {exc}", exc.hint)
        return
    for module, extra in _extras_needed(target):
        message = missing_extra(module, extra, name)
        if message:
            report(path + (CLASS_KEY,), message)
    slot = _function_slot(path)
    # Bound to its keys now, called later: the engine supplies its other arguments (a function in a function slot, or _partial_).
    later = bound_later(node, target) if slot else bool(node.get(PARTIAL_KEY))
    if slot and not later and inspect.isclass(target) and not instances_callable(target):
        report(
            path + (CLASS_KEY,),
            f"{name} is a class without __call__, but {slot[0]}; give a function, or a class whose instances are callable",
        )
    sig = signature_of(target)
    if sig is None:
        return
    params = sig.parameters
    named = {n: p for n, p in params.items() if p.kind in _NAMED}
    takes_any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    framework = framework_keys(path)
    kwargs = {k: v for k, v in node.items() if k not in RESERVED_KEYS and k not in framework}

    positional = node.get(ARGS_KEY) or []
    runtime = _runtime_parameters(params, len(positional), slot[1]) if slot and later else ()
    for key in kwargs:
        if key in runtime:
            assert slot is not None  # runtime is empty without a function slot
            report(
                path + (key,),
                f"{key!r} is an argument of {name} that the engine passes ({slot[0]}); it cannot be set in the config",
            )
            continue
        if key in named:
            continue
        if not takes_any_keyword:
            takes = ", ".join(named) or "no keyword arguments"
            report(
                path + (key,),
                f"unknown argument of {name} (it takes: {takes})",
                suggest(str(key), [*named, *RESERVED_KEYS]),
            )
        else:
            # **kwargs hides the real set; a near miss of a named parameter is still a typo.
            unset = [n for n in named if n not in kwargs]
            if close_matches(str(key), unset, cutoff=0.85):
                report(
                    path + (key,), f"unknown argument of {name}, passed on through **kwargs", suggest(str(key), unset)
                )

    for key, value in task.items():
        if key in named and key not in node and key not in runtime:
            node[key] = copy.deepcopy(value)
            kwargs[key] = node[key]

    if path == ("dataset",) or (len(path) == 2 and path[0] == "datasets"):
        _record_defaults(node, named, supplied=set(SUPPLIED_BY_ENGINE["dataset"]))

    try:
        bound = sig.bind_partial(*positional, **{k: v for k, v in kwargs.items() if k in named or takes_any_keyword})
    except TypeError as exc:
        report(path + (ARGS_KEY,) if positional else path, f"arguments do not fit {name}: {exc}")
        return

    if not later and (slot or path[0] not in STRUCTURES):
        supplied = _supplied_by_engine(path, params)
        for pname, param in params.items():
            if param.default is param.empty and param.kind in (*_NAMED, inspect.Parameter.POSITIONAL_ONLY):
                if pname not in bound.arguments and pname not in supplied and pname not in given_later:
                    where_to = " or in task (it is injected)" if path[0] in TASK_TARGETS else ""
                    report(
                        path,
                        f"missing required argument {pname!r} of {name}; set {format_key(path + (pname,))}{where_to}",
                    )

    hints = _type_hints(target)
    for key, value in kwargs.items():
        declared = named.get(key)
        annotation = hints.get(key)
        if declared is None or annotation is None or not _enforceable(annotation) or _built_or_interpolated(value):
            continue
        if value is None and declared.default is None:
            continue
        message = check_type(value, annotation)
        if message:
            report(path + (key,), message)


def _extras_needed(target: Any) -> list[tuple[str, str]]:
    """The (module, extra) pairs a component class declares in ``extras_needed`` (a Callback attribute); others: none."""
    declared = getattr(target, "extras_needed", ()) if inspect.isclass(target) else ()
    if not isinstance(declared, (tuple, list)):
        return []
    return [
        (pair[0], pair[1])
        for pair in declared
        if isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
    ]


def _function_slot(path: tuple) -> tuple[str, int | None] | None:
    """How the engine calls the component at ``path`` later, and with how many arguments (None: the node's inputs); None: no function slot."""
    match path:
        case ("graph", int(), "function"):
            return "the graph calls it with the node's input tensors", None
        case ("graph", int(), "forward_hooks", int()):
            return "the graph calls it as hook(node_name, outputs)", 2
        case ("graph", int(), "backward_hooks", int()):
            return "the graph calls it as hook(node_name, tensor_name, grad)", 3
        case ("pipelines", _, "batch"):
            return "the pipeline calls it with each batch", 1
        case ("stages", int(), "until"):
            return "the stage calls it as until(state) after every epoch", 1
        case ("metrics", _):
            return (
                "a metric that is not a torchmetrics Metric is called as metric(prediction, target) on every batch",
                2,
            )
    return None


def _runtime_parameters(
    params: typing.Mapping[str, inspect.Parameter], bound: int, count: int | None
) -> tuple[str, ...]:
    """The positional parameters the engine's call fills: ``count`` of them after the ``bound`` given in ``_args_`` (None: unknown here)."""
    if count is None:
        return ()
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(name for name, p in params.items() if p.kind in positional)[bound : bound + count]


def _record_defaults(node: dict, named: typing.Mapping[str, inspect.Parameter], supplied: set[str]) -> None:
    """Write the dataset's defaulted arguments into the config: the record names the whole data pipeline."""
    for name, param in named.items():
        if name in node or name in supplied or param.default is param.empty:
            continue
        default = list(param.default) if isinstance(param.default, tuple) else param.default
        if _plain(default):
            node[name] = default


def _plain(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool, type(None))):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _is_section_top(path: tuple) -> bool:
    return len(path) == 1 or (len(path) == 2 and path[0] in _LISTED)


def _supplied_by_engine(path: tuple, params: typing.Mapping[str, inspect.Parameter]) -> set[str]:
    section = path[0]
    if path[:1] == ("optimizers",) and len(path) in (3, 4) and path[2] == "scheduler":
        section = "scheduler"  # an optimizer's own scheduler: built on that optimizer
    elif not _is_section_top(path) or section not in SUPPLIED_BY_ENGINE:
        return set()
    names = set(SUPPLIED_BY_ENGINE[section])
    if FIRST_ARGUMENT in names and params:
        names.add(next(iter(params)))
    return names


def _type_hints(target: Callable) -> dict:
    function = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(function)
    except Exception:  # unresolvable forward references: skip type checks, keep the rest
        return {}


def _enforceable(annotation: Any) -> bool:
    """Only plain annotations are checked; anything generic is trusted, not guessed at."""
    if annotation in (bool, int, float, str, type(None)):
        return True
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return True
    if origin in UNIONS:
        return all(
            _enforceable(arg) or (isinstance(arg, type) and typing.get_origin(arg) is None)
            for arg in typing.get_args(annotation)
        )
    return False


def _built_or_interpolated(value: Any) -> bool:
    return isinstance(value, (dict, list))
