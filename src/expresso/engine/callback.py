"""The Callback base class, the ``Every`` filter, and the dispatcher that calls only what is overridden.

A callback subclasses ``Callback`` and overrides ``on_<event>(state)`` for the
events it cares about (events.py says what fires each and what ``state``
holds then). ``order`` sorts callbacks within an event (lower first, ties
keep the configured order); it only matters between handlers of the same
event, since recording and saving have their own events after a step's or
an epoch's end (``BATCH_CHECKPOINT``, ``EPOCH_CHECKPOINT``). ``phases``
limits a callback to some of "fit", "validate", "test", "evaluate_train"
(the training data evaluated without updates: ``expresso eval --split
train``), "predict" (None: all); ``provides`` names the metrics it writes
into ``state.metrics``, so a config may monitor them (``--check`` refuses a
monitor that no metric, schedule or callback provides). A stateful callback
returns its state from ``state_dict`` and restores it in
``load_state_dict``: the checkpoint carries it so a resumed run continues bit
for bit. A callback that ends a stage asks through
``state.request_stop(self.state_key, why)``; when that run is resumed,
``still_stops`` is asked again after the states are restored (a larger
patience may have changed its mind).

``listens(event)`` says whether, and how often, this instance handles an
event its class handles: ``True`` (every time), ``False`` (never: a
per-epoch progress printer never runs per batch) or a filter such as
``Every(steps=100)`` (ignite's ``every``/``once``): the dispatcher then calls
the handler only when the filter passes, so "every N steps" is written once.

The dispatcher pre-computes, per event and phase, the handlers of the
callbacks that override its method (and whose ``listens`` does not decline
it), so an event nobody listens to costs one dict lookup and an empty loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .events import Event

if TYPE_CHECKING:
    from .state import State


@dataclass(frozen=True)
class Every:
    """A filter on a handler: it runs on some occurrences of its event only.

    ``Every(steps=N)``: when ``state.step`` (optimizer steps made) is a
    multiple of N: at ``BATCH_END``/``BATCH_CHECKPOINT``, after every N-th
    step. ``Every(epochs=N)``: in every N-th epoch, counted from 1 (epochs
    N, 2N...: ``state.epoch + 1`` a multiple of N). ``once=True``: only the
    first time it would run (with ``steps``/``epochs``, the first time they
    pass), once per process: a resumed run runs it again.
    """

    steps: int | None = None
    epochs: int | None = None
    once: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "epochs"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(
                    f"Invalid value for argument `{name}`. Received: {name}={value!r}; expected an integer >= 1"
                )
        if self.steps is not None and self.epochs is not None:
            raise ValueError(
                f"Every counts steps or epochs, not both. Received: steps={self.steps}, epochs={self.epochs}"
            )
        if self.steps is None and self.epochs is None and not self.once:
            raise ValueError("Every needs steps=N, epochs=N or once=True. Received: none of them")

    def passes(self, state: State) -> bool:
        """Whether the handler runs for this occurrence (``once`` aside)."""
        if self.steps is not None:
            return state.step % self.steps == 0
        if self.epochs is not None:
            return (state.epoch + 1) % self.epochs == 0
        return True

    def describe(self) -> str:
        """How the filter reads in a listing: ``every 50 steps``, ``every 2 epochs, once``."""
        parts = [f"every {self.steps} steps"] if self.steps is not None else []
        parts += [f"every {self.epochs} epochs"] if self.epochs is not None else []
        return ", ".join(parts + (["once"] if self.once else []))


class Callback:
    """What the loop calls at its events; subclass it and override the ``on_<event>`` methods you need.

    Only overridden methods are called (the dispatcher skips the others), so
    an empty method below costs nothing.
    """

    order: int = 0
    phases: tuple[str, ...] | None = None
    # Several processes (docs/scale.md): only rank 0 runs a callback that says True (it writes files, prints, logs).
    rank_zero_only: bool = False
    # The metric names this callback writes into state.metrics ("val/f1_custom"): --check accepts them as monitors.
    provides: tuple[str, ...] = ()
    # The key its stop requests carry in state.stops (None: its state_key); a stage's own condition gets its config key.
    stop_key: str | None = None
    # (module, extra) pairs: a library it imports lazily and the extra that installs it (("psutil", "monitor")); --check
    # refuses a configured callback whose library is missing, with the `pip install torch-expresso[extra]` line.
    extras_needed: tuple[tuple[str, str], ...] = ()

    def listens(self, event: Event) -> bool | Every:
        """Whether, and how often, this instance handles ``event`` (asked once per event and phase).

        ``True``: every time; ``False``: never; an ``Every``: when it passes.
        """
        return True

    def state_dict(self) -> dict[str, Any]:
        """This callback's state for a checkpoint (plain data and tensors)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (before FIT_START on resume; mid-fit on a rollback)."""

    def still_stops(self, state: State) -> bool:
        """Asked on resume when this callback had ended the stage: whether it would still end it (by default, yes)."""
        return True

    @property
    def state_key(self) -> str:
        """Where this callback's state lives in a checkpoint (unique per class by default)."""
        return type(self).__qualname__

    # -- the events (events.py says what fires each and what state holds then) --------
    def on_fit_start(self, state: State) -> None:
        """fit() begins: weights seeded or restored, nothing trained yet."""

    def on_stage_start(self, state: State) -> None:
        """A stage begins (or resumes part-way)."""

    def on_epoch_start(self, state: State) -> None:
        """A training epoch begins (or resumes part-way: ``state.batch_index`` > 0)."""

    def on_batch_start(self, state: State) -> None:
        """A training batch was drawn (``state.batch``), before it reaches the device."""

    def on_after_forward(self, state: State) -> None:
        """An update's outputs and loss are in ``state.outputs``; backward comes next."""

    def on_after_backward(self, state: State) -> None:
        """The update's gradients are computed; clipping and the step come next."""

    def on_before_optimizer_step(self, state: State) -> None:
        """Right before the update's optimizers clip and step."""

    def on_batch_end(self, state: State) -> None:
        """The batch's updates are made (``state.step`` counts it): do the step's work."""

    def on_batch_checkpoint(self, state: State) -> None:
        """After every batch_end handler: record and save the step."""

    def on_validation_start(self, state: State) -> None:
        """Validation during fit begins."""

    def on_validation_end(self, state: State) -> None:
        """Validation during fit is done: ``state.metrics`` holds its ``val/`` values."""

    def on_epoch_end(self, state: State) -> None:
        """The epoch's training and validation are done: do the epoch's work (step a schedule, ask to stop, add metrics)."""

    def on_epoch_checkpoint(self, state: State) -> None:
        """After every epoch_end handler: ``state.metrics`` is final; record and save the epoch."""

    def on_stage_end(self, state: State) -> None:
        """A stage is over (its epochs, or a stop condition)."""

    def on_checkpoint_save(self, state: State) -> None:
        """A checkpoint is about to be written: flush what it should count."""

    def on_checkpoint_load(self, state: State) -> None:
        """A checkpoint was restored (not for a weights-only load)."""

    def on_fit_end(self, state: State) -> None:
        """fit() is done."""

    def on_exception(self, state: State) -> None:
        """An exception escapes fit() (``state.extra["exception"]``); it propagates after the handlers."""

    def on_eval_start(self, state: State) -> None:
        """validate(), test(), evaluate_train() or predict() begins (``state.phase`` says which)."""

    def on_eval_batch_end(self, state: State) -> None:
        """An evaluated batch (fit's validation too): ``state.outputs`` holds its tensors."""

    def on_eval_end(self, state: State) -> None:
        """The pass outside fit is done."""


class _Filtered:
    """A handler behind an ``Every`` filter; ``once`` is remembered here, across phases."""

    __slots__ = ("handler", "every", "spent")

    def __init__(self, handler: Callable[[Any], None], every: Every):
        self.handler, self.every, self.spent = handler, every, False

    def __call__(self, state: State) -> None:
        if self.spent or not self.every.passes(state):
            return
        self.spent = self.every.once
        self.handler(state)


class Dispatcher:
    """Calls the callbacks that handle an event, in order, for the current phase, through their filters."""

    def __init__(self, callbacks: Iterable[Callback]):
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        keys = [cb.state_key for cb in self.callbacks]
        duplicated = {k for k in keys if keys.count(k) > 1}
        if duplicated:
            raise ValueError(
                f"two callbacks share the checkpoint key(s) {sorted(duplicated)}: give each a distinct state_key"
            )
        self._handlers: dict[tuple[Event, str], list] = {}
        self._filtered: dict[tuple[int, Event], _Filtered] = {}  # one per callback and event: ``once`` spans phases

    def handlers(self, event: Event, phase: str) -> list:
        """The handlers ``event`` calls in ``phase``, in order (bound methods, or filtered ones)."""
        key = (event, phase)
        found = self._handlers.get(key)
        if found is None:
            found = [
                handler
                for cb in self.callbacks
                if cb.phases is None or phase in cb.phases
                if (handler := self._handler(cb, event)) is not None
            ]
            self._handlers[key] = found
        return found

    def _handler(self, cb: Callback, event: Event) -> Callable[[Any], None] | None:
        name = f"on_{event.value}"
        if getattr(type(cb), name) is getattr(Callback, name):
            return None  # not overridden: nothing to call
        listens = cb.listens(event)
        if isinstance(listens, Every):
            return self._filtered.setdefault((id(cb), event), _Filtered(getattr(cb, name), listens))
        return getattr(cb, name) if listens else None

    def listing(self, phase: str = "fit") -> list[tuple[Event, list[str]]]:
        """Per event of ``phase`` that anyone handles, the callbacks it calls in order (a filter in parentheses).

        What ``expresso config --callbacks`` prints: the loop a config makes,
        read from the same handler lists the loop calls.
        """
        table = []
        for event in Event:
            names = []
            for handler in self.handlers(event, phase):
                every = handler.every if isinstance(handler, _Filtered) else None
                target = handler.handler if isinstance(handler, _Filtered) else handler
                owner = getattr(target, "__self__", target)  # a bound on_<event> method: its callback
                names.append(type(owner).__name__ + (f" ({every.describe()})" if every is not None else ""))
            if names:
                table.append((event, names))
        return table

    def __call__(self, event: Event, state: State) -> None:
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
