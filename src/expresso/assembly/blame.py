"""Which config entry an error raised while building lies in: bad input names the file and the key.

A component that rejects its configured arguments (``building``) and a wiring
mistake the engine finds (``wired``: a ``GraphError`` and the engine location
it carries) both become one ``ConfigError`` line naming the file and key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..config import Config, ConfigError, Problem
from ..config.errors import format_key
from ..config.wiring import Wiring
from ..engine.graph import GraphError


@contextlib.contextmanager
def building(config: Config, *path: Any) -> Iterator[None]:
    """A component that rejects its configured arguments is bad input: name the file and key."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = (
            f"building it raised {type(exc).__name__}: {first}" if first else f"building it raised {type(exc).__name__}"
        )
        raise ConfigError([Problem(config.where(path), format_key(path) if path else "(root)", message)]) from exc


@contextlib.contextmanager
def wired(config: Config, w: Wiring) -> Iterator[None]:
    """A wiring mistake (GraphError) names the config entry it lies in."""
    try:
        yield
    except GraphError as exc:
        raise ConfigError([wiring_problem(exc, w, config.where)]) from exc


def wiring_problem(exc: GraphError, w: Wiring, where) -> Problem:
    """The problem a GraphError is, at the config entry it lies in."""
    at = _config_path(w, exc.at)
    return Problem(where(at), format_key(at) if at else "(root)", str(exc))


def _config_path(w: Wiring, at: tuple) -> tuple:
    """Where in the user's config an engine location (("losses", "loss"), ("graph", 0)...) lies."""
    if not at:
        return ()
    section = getattr(w, at[0], None)
    if isinstance(section, dict) and at[1] in section:
        return section[at[1]][0]
    if isinstance(section, list) and isinstance(at[1], int) and at[1] < len(section):
        return section[at[1]][0]
    return at
