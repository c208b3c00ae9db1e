"""The Callback base class and the dispatcher that calls only what is overridden.

A callback subclasses ``Callback`` and overrides ``on_<event>(state)`` for the
events it cares about. ``order`` sorts callbacks (lower first, ties keep the
configured order); ``phases`` limits a callback to some of "fit",
"validate", "test", "evaluate_train" (the training data evaluated without
updates: ``expresso eval --split train``), "predict" (None: all);
``provides`` names the metrics it writes into ``state.metrics``, so a config
may monitor them (``--check`` refuses a monitor that no metric, schedule or
callback provides). A stateful callback returns its state from
``state_dict`` and restores it in ``load_state_dict``: the checkpoint carries
it so a resumed run continues bit for bit. A callback that ends a stage asks
through ``state.request_stop(self.state_key, why)``; when that run is
resumed, ``still_stops`` is asked again after the states are restored (a
larger patience may have changed its mind).

The dispatcher pre-computes, per event, the callbacks that override its
method (and whose ``listens(event)`` agrees), so an event nobody listens to
costs one dict lookup and an empty loop. ``listens`` lets one instance skip an
event its class handles: a per-epoch progress printer never runs per batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .events import Event


class Callback:
    order: int = 0
    phases: tuple[str, ...] | None = None
    # The metric names this callback writes into state.metrics ("val/f1_custom"): --check accepts them as monitors.
    provides: tuple[str, ...] = ()

    def listens(self, event: Event) -> bool:
        """False to skip an event this class handles (asked once per event and phase)."""
        return True

    def state_dict(self) -> dict[str, Any]:
        return {}

    def still_stops(self, state: Any) -> bool:
        """Asked on resume when this callback had ended the stage: whether it would still end it (by default, yes)."""
        return True

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    @property
    def state_key(self) -> str:
        """Where this callback's state lives in a checkpoint (unique per class by default)."""
        return type(self).__qualname__


for _event in Event:  # one no-op method per event: on_fit_start, on_batch_end, ...
    setattr(Callback, f"on_{_event.value}", lambda self, state: None)


class Dispatcher:
    """Calls the callbacks that handle an event, in order, for the current phase."""

    def __init__(self, callbacks: Iterable[Callback]):
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        keys = [cb.state_key for cb in self.callbacks]
        duplicated = {k for k in keys if keys.count(k) > 1}
        if duplicated:
            raise ValueError(
                f"two callbacks share the checkpoint key(s) {sorted(duplicated)}: give each a distinct state_key"
            )
        self._handlers: dict[tuple[Event, str], list] = {}

    def handlers(self, event: Event, phase: str) -> list:
        key = (event, phase)
        found = self._handlers.get(key)
        if found is None:
            name = f"on_{event.value}"
            base = getattr(Callback, name)
            found = [
                getattr(cb, name)
                for cb in self.callbacks
                if getattr(type(cb), name, base) is not base
                and (cb.phases is None or phase in cb.phases)
                and cb.listens(event)
            ]
            self._handlers[key] = found
        return found

    def __call__(self, event: Event, state: Any) -> None:
        for handler in self.handlers(event, state.phase):
            handler(state)

    def state_dict(self) -> dict[str, Any]:
        return {cb.state_key: cb.state_dict() for cb in self.callbacks}

    def find(self, state_key: str) -> Callback | None:
        """The callback whose checkpoint key is ``state_key``, if this run has it."""
        return next((cb for cb in self.callbacks if cb.state_key == state_key), None)

    def load_state_dict(self, states: dict[str, Any]) -> None:
        for cb in self.callbacks:
            if cb.state_key in states:
                cb.load_state_dict(states[cb.state_key])
