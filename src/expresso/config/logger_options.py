"""Options the loggers of a run receive besides their config: a profile's, and ``offline: true`` under ``--offline``.

They are added to the loggers' constructor arguments when the run is built
(``build_trainer(logger_options=...)``), never to the config tree, so
config.yaml and the hyperparameters trackers receive hold none of them.

- A profile's ``loggers.<key>`` matches the run's ``loggers:`` entries whose
  class is the one ``<key>`` names: a short name (``mlflow``) or a class path
  (``expresso.loggers.MLflowLogger``, ``my_project/trackers.py:Mine``), so
  ``mlflow`` matches ``{class: expresso.loggers.MLflowLogger, ...}`` too.
  Options for a logger the run does not list are left unused (a profile
  serves every experiment); an unknown short name, an option the class does
  not take or of the wrong type, or one the config sets as well, is refused
  naming the profile file and the key, never the value.
- ``--offline`` sets ``offline: true`` on every logger whose class takes an
  ``offline`` parameter (the hosted trackers), over the config's and the
  profile's value. A logger without one that would send to a server (a
  ``tracking_uri`` or ``url`` option with a network scheme: MLflow's
  tracking server) is refused: it has no offline mode, and sending its
  records elsewhere than asked would be a silent change. Local stores
  (``sqlite:``, ``file:``, a path) are offline already.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..runs.folder import RunFolder
from .callables import CallableNotFound, locate
from .check import signature_of
from .errors import ConfigError, Problem, format_key, suggest
from .loggers import KNOWN_LOGGERS
from .profiles import Profile
from .schema import CLASS_KEY, RESERVED_KEYS
from .validation import expected, fits

OFFLINE = "offline"
SERVER_OPTIONS = ("tracking_uri", "url")  # options that name where a logger sends its records
LOCAL_SCHEMES = ("file", "sqlite")
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True)
class LoggerOptions:
    """Per ``loggers:`` index, the options added when the logger is built; and what run.json may say about them."""

    by_index: dict[int, dict[str, Any]] = field(default_factory=dict)
    applied: dict[str, list[str]] = field(default_factory=dict)  # profile logger key -> the option names it supplied
    unused: list[str] = field(default_factory=list)  # profile logger keys no logger of this run matched
    offline: list[str] = field(default_factory=list)  # the loggers set offline, as the config names them

    @property
    def supplied(self) -> dict[tuple, list[str]]:
        """The arguments added per component path, for the config's check (``load_config(supplied=...)``)."""
        return {("loggers", index): sorted(options) for index, options in self.by_index.items()}

    def record(self, profile: Profile | None) -> dict[str, Any] | None:
        """run.json's ``profile``: its name, file and the names (never the values) of what it supplied; None: no profile."""
        if profile is None:
            return None
        return {
            "name": profile.name,
            "file": str(profile.path),
            "loggers": self.applied,
            "unused": self.unused,
            "env": sorted(profile.env),
        }


@dataclass
class _RunLogger:
    index: int
    name: str  # as the config spells it: a short name or a class path
    target: Any
    configured: dict[str, Any]


def logger_options(tree: dict, where: Callable[[tuple], str], profile: Profile | None, offline: bool) -> LoggerOptions:
    """The options each logger of ``tree`` gets from ``profile`` and ``--offline``; ConfigError listing every problem.

    ``tree`` is validated, not yet checked: the check then counts these options as given
    (``LoggerOptions.supplied``), and reports a logger class that cannot be imported.
    """
    run = _run_loggers(tree)
    problems: list[Problem] = []
    options = LoggerOptions()
    supplied_by: dict[tuple[int, str], str] = {}  # (index, option) -> the profile key that set it
    for key, given in (profile.loggers if profile is not None else {}).items():
        assert profile is not None
        target = _profile_target(profile, key, problems)
        if target is None:
            continue
        matched = [logger for logger in run if logger.target is target]
        if not matched:
            options.unused.append(key)
            continue
        if not given:
            continue
        found = _option_problems(profile, key, target, given)
        problems += found
        for logger in matched:
            for option in given:
                path = ("loggers", logger.index, option)
                if option in logger.configured:
                    problems.append(
                        profile.problem(
                            f"loggers.{key}.{option}",
                            f"also set by the config ({where(path)}: {format_key(path)}): set it in one place",
                        )
                    )
                elif (logger.index, option) in supplied_by:
                    problems.append(
                        profile.problem(
                            f"loggers.{key}.{option}",
                            f"also set under loggers.{supplied_by[logger.index, option]} (the same logger): set it once",
                        )
                    )
                supplied_by[logger.index, option] = key
        if not found:
            for logger in matched:
                options.by_index.setdefault(logger.index, {}).update(given)
            options.applied[key] = sorted(given)
    if offline:
        problems += _set_offline(run, options)
    if problems:
        raise ConfigError(problems)
    return options


def _run_loggers(tree: dict) -> list[_RunLogger]:
    """The run's loggers that are built from a class (``csv`` is metrics.csv), with their classes and configured options."""
    found = []
    for index, entry in enumerate(tree.get("loggers") or []):
        if isinstance(entry, str):
            cls = KNOWN_LOGGERS[entry].cls if entry in KNOWN_LOGGERS else None
            if cls is not None:
                found.append(_RunLogger(index, entry, locate(cls), {}))
        elif isinstance(entry, dict) and isinstance(entry.get(CLASS_KEY), str):
            try:
                target = locate(entry[CLASS_KEY])
            except CallableNotFound:
                continue  # the config's check reports it, naming the config's file
            configured = {k: v for k, v in entry.items() if k not in RESERVED_KEYS}
            found.append(_RunLogger(index, entry[CLASS_KEY], target, configured))
    return found


def _profile_target(profile: Profile, key: str, problems: list[Problem]) -> Any:
    """The class a profile's ``loggers.<key>`` names (None: csv, or a problem was added)."""
    if key in KNOWN_LOGGERS:
        cls = KNOWN_LOGGERS[key].cls
        if cls is None:
            if profile.loggers[key]:
                problems.append(
                    profile.problem(f"loggers.{key}", f"the {key} logger ({RunFolder.HISTORY}) takes no options")
                )
            return None
        return locate(cls)
    if "." not in key and ":" not in key:
        problems.append(
            profile.problem(
                f"loggers.{key}",
                f"unknown logger (a profile names one as the config does: {', '.join(KNOWN_LOGGERS)}, or its class)",
                suggest(key, KNOWN_LOGGERS),
            )
        )
        return None
    try:
        return locate(key)
    except CallableNotFound as exc:
        problems.append(profile.problem(f"loggers.{key}", f"cannot import {key!r}: {exc}", exc.hint))
        return None


def _option_problems(profile: Profile, key: str, target: Any, given: dict[str, Any]) -> list[Problem]:
    """Options of ``loggers.<key>`` the class does not take, or of a type it does not accept (named, never shown)."""
    sig = signature_of(target)
    if sig is None:
        return []
    named = {n: p for n, p in sig.parameters.items() if p.kind in _NAMED}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    shown = KNOWN_LOGGERS[key].cls if key in KNOWN_LOGGERS else key  # the class as the profile spells it
    hints = _init_hints(target)
    problems = []
    for option, value in given.items():
        at = f"loggers.{key}.{option}"
        if option in RESERVED_KEYS:
            problems.append(
                profile.problem(at, f"a profile gives a logger's options, not its {option!r} (the config's)")
            )
        elif option not in named and not takes_any:
            takes = ", ".join(named) or "no keyword arguments"
            problems.append(
                profile.problem(at, f"not an argument of {shown} (it takes: {takes})", suggest(option, named))
            )
        elif option in hints and not fits(value, hints[option]):
            problems.append(
                profile.problem(
                    at, f"received a value of type {type(value).__name__}, expected {expected(hints[option])} ({shown})"
                )
            )
    return problems


def _init_hints(target: Any) -> dict[str, Any]:
    import typing

    function = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(function)
    except Exception:  # unresolvable forward references: no type checks
        return {}


def _set_offline(run: list[_RunLogger], options: LoggerOptions) -> list[Problem]:
    """``offline: true`` for each logger that takes it; a problem for one that would send to a server regardless."""
    problems = []
    for logger in run:
        sig = signature_of(logger.target)
        params = sig.parameters if sig is not None else {}
        if OFFLINE in params and params[OFFLINE].kind in _NAMED:
            options.by_index.setdefault(logger.index, {})[OFFLINE] = True
            options.offline.append(logger.name)
            continue
        supplied = options.by_index.get(logger.index, {})
        for option in SERVER_OPTIONS:
            scheme = _network_scheme(supplied.get(option, logger.configured.get(option)))
            if scheme is not None:
                source = "the profile" if option in supplied else "the config"
                problems.append(
                    Problem(
                        "command line",
                        "--offline",
                        f"the {logger.name} logger (loggers.{logger.index}) sends to a server ({scheme}://..., its {option} "
                        f"from {source}) and has no offline mode; drop --offline, or its {option} to use its local store",
                    )
                )
    return problems


def _network_scheme(value: Any) -> str | None:
    """The scheme of a URI that names a server (``https``, ``databricks``, ``postgresql``...); None for a local store or a path."""
    if not isinstance(value, str) or "://" not in value:
        return None
    scheme = value.split("://", 1)[0].lower()
    return None if scheme in LOCAL_SCHEMES or not scheme.replace("+", "").isalnum() else scheme
