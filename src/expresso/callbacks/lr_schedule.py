"""Learning-rate schedules as a callback: the loop knows no scheduler.

``LRScheduler`` steps torch schedulers (and ``expresso.schedules.Piecewise``)
once per epoch or once per optimizer step, feeds ``ReduceLROnPlateau`` its
monitored metric, and records the learning rate in ``state.metrics`` (``lr``,
or ``lr/<optimizer>`` when the graph has several optimizers) so the history
holds it. Schedulers may be given built, or as callables taking the optimizer
(``functools.partial``), built at fit start: the trainer may build the
optimizer itself. A list is stepped in its order at each interval: list the
piecewise table first and a torch scheduler after it to shape the learning
rate from the value the table set.

With ``interval="epoch"`` the ``lr`` metric is the rate the epoch trained
with; with ``"step"`` it is the rate of the next step, written after each
step (what the history's step rows, written earlier in the same event, used).

A resume restores the schedulers' states, unless ``rebuild`` is set (by
``expresso resume`` when it changes the schedule or its optimizer's
settings): then they are built anew from the optimizer's base rate and
stepped to the resumed position, so the rate is what a run with the new
settings would have there. A ``ReduceLROnPlateau`` cannot be replayed (it
follows measured values): it keeps what it has counted, with its new settings.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch.optim.lr_scheduler import LRScheduler as TorchScheduler
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..engine.callback import Callback
from ..engine.events import Event
from ..engine.metrics import lr_key
from ..engine.state import State
from .metric_watcher import MetricWatcher

SchedulerLike = TorchScheduler | Callable[[torch.optim.Optimizer], TorchScheduler]


class LRScheduler(Callback):
    """Steps learning-rate schedules at the loop's events and records the rate, so the loop itself knows no scheduler.

    Each interval (an epoch's end, or each optimizer step) steps the
    schedulers in their order; a ``ReduceLROnPlateau`` gets the monitored
    value, read by the same rules as ``Checkpoint``'s and ``EarlyStopping``'s
    (``MetricWatcher``). The rate goes into ``state.metrics`` as ``lr`` (or
    ``lr/<optimizer>``) for the history and loggers; the schedulers' states
    travel in the checkpoint (the module docstring says what ``rebuild`` does).

    Args:
        scheduler: a torch LR scheduler, a callable taking the optimizer and
            returning one (``functools.partial(StepLR, step_size=10)``), or a
            list of them, stepped in that order.
        interval: ``"epoch"`` (step at every epoch's end) or ``"step"`` (after
            every optimizer step; not for ``ReduceLROnPlateau``).
        optimizer: the name of the optimizer to schedule; needed only when the
            trainer has several and no built scheduler names one.
        monitor: the metric a ``ReduceLROnPlateau`` is fed (unused otherwise).
    """

    order = 0  # the epoch's ``lr`` (recorded at its start) stays the rate it trained with when this steps at its end
    phases = ("fit",)

    def __init__(
        self,
        scheduler: SchedulerLike | Sequence[SchedulerLike],
        interval: str = "epoch",
        optimizer: str | None = None,
        monitor: str = "val/loss",
    ):
        if interval not in ("epoch", "step"):
            raise ValueError(
                f"Invalid value for argument `interval`. Received: interval={interval!r}; expected 'epoch' or 'step'"
            )
        entries = list(scheduler) if isinstance(scheduler, (list, tuple)) else [scheduler]
        if not entries:
            raise ValueError("LRScheduler needs at least one scheduler. Received: scheduler=[]")
        for entry in entries:
            if not (isinstance(entry, TorchScheduler) or callable(entry)):
                raise TypeError(
                    "Invalid value for argument `scheduler`: expected a torch LR scheduler or a callable taking the "
                    f"optimizer (functools.partial(torch.optim.lr_scheduler.StepLR, step_size=10)). Received: {entry!r}"
                )
            if interval == "step" and _is_plateau(entry):
                raise ValueError("ReduceLROnPlateau steps on an epoch metric: use interval='epoch'")
        self.entries = cast("list[SchedulerLike]", entries)  # each one passed the check just above
        self.interval, self.optimizer_name = interval, optimizer
        self.schedulers: list[TorchScheduler] | None = None
        self.metric_key = "lr"
        self._plateau = _PlateauMetric(monitor)
        self._pending: list[dict[str, Any]] | None = None
        self.rebuild = False  # at fit start: build the schedules anew and step them to the resumed position

    def listens(self, event: Event) -> bool:
        return event is not Event.BATCH_END or self.interval == "step"

    @property
    def state_key(self) -> str:
        details = [f"optimizer={self.optimizer_name}"] if self.optimizer_name else []
        details += ["interval=step"] if self.interval == "step" else []
        return f"LRScheduler[{', '.join(details)}]" if details else "LRScheduler"

    # -- events -----------------------------------------------------------
    def on_fit_start(self, state: State) -> None:
        if self.schedulers is None:
            name, optimizer = self._pick_optimizer(state.optimizers)
            self.metric_key = lr_key(name, len(state.optimizers))
            # Building a torch scheduler sets the learning rate for its first epoch; on a
            # resume the optimizer already holds the checkpoint's rate: keep that one.
            if self.rebuild:
                self._rebuild(optimizer, state)
                self._record(state)
                return
            rates = [group["lr"] for group in optimizer.param_groups]
            self.schedulers = [e if isinstance(e, TorchScheduler) else e(optimizer) for e in self.entries]
            if self._pending is not None:
                self._restore(self._pending)
                for group, rate in zip(optimizer.param_groups, rates):
                    group["lr"] = rate
        self._record(state)

    def on_epoch_start(self, state: State) -> None:
        self._plateau.on_epoch_start(state)
        self._record(state)

    def on_validation_end(self, state: State) -> None:
        self._plateau.on_validation_end(state)

    def on_batch_end(self, state: State) -> None:
        self._step(state)
        self._record(state)

    def on_epoch_end(self, state: State) -> None:
        if self.interval == "epoch":
            self._step(state)

    def on_fit_end(self, state: State) -> None:
        if any(isinstance(scheduler, ReduceLROnPlateau) for scheduler in self._built):
            self._plateau.on_fit_end(state)

    # -- helpers ----------------------------------------------------------
    @property
    def _built(self) -> list[TorchScheduler]:
        """The schedulers, which on_fit_start builds before any other event of the fit reaches this."""
        if self.schedulers is None:
            raise RuntimeError("LRScheduler: the schedulers are built at fit start")
        return self.schedulers

    def _step(self, state: State) -> None:
        for scheduler in self._built:
            if isinstance(scheduler, ReduceLROnPlateau):
                value = self._plateau.read(state)
                if value is not None:
                    scheduler.step(value)
            else:
                scheduler.step()

    def _record(self, state: State) -> None:
        # The first param group's rate; groups with their own rates follow the same schedule.
        state.metrics[self.metric_key] = float(self._built[0].optimizer.param_groups[0]["lr"])

    def _pick_optimizer(self, optimizers: dict[str, torch.optim.Optimizer]) -> tuple[str, torch.optim.Optimizer]:
        if not optimizers:
            raise ValueError("LRScheduler: the trainer has no optimizer to schedule")
        if self.optimizer_name is not None:
            if self.optimizer_name not in optimizers:
                raise KeyError(
                    f"LRScheduler: no optimizer named {self.optimizer_name!r}; the optimizers are {sorted(optimizers)}"
                )
            chosen = self.optimizer_name
        elif len(optimizers) == 1:
            chosen = next(iter(optimizers))
        else:  # a built scheduler names its optimizer
            bound = {id(e.optimizer) for e in self.entries if isinstance(e, TorchScheduler)}
            names = [name for name, opt in optimizers.items() if id(opt) in bound]
            if len(names) != 1:
                raise ValueError(
                    f"LRScheduler: the trainer has several optimizers; choose one with optimizer=NAME among {sorted(optimizers)}"
                )
            chosen = names[0]
        for entry in self.entries:
            if isinstance(entry, TorchScheduler) and entry.optimizer is not optimizers[chosen]:
                raise ValueError(
                    f"LRScheduler: a built {type(entry).__name__} drives an optimizer that is not the trainer's "
                    f"{chosen!r}; pass a callable (functools.partial) so it is built on the trainer's optimizer"
                )
        return chosen, optimizers[chosen]

    def _rebuild(self, optimizer: torch.optim.Optimizer, state: State) -> None:
        saved, self._pending = self._pending or [], None
        plateau = any(_is_plateau(entry) for entry in self.entries)
        if not plateau:  # the schedule starts again from the base rate (a plateau's reductions are history it keeps)
            for group in optimizer.param_groups:
                if "initial_lr" in group:
                    group["lr"] = group.pop("initial_lr")
        rates = [group["lr"] for group in optimizer.param_groups]
        self.schedulers = [e if isinstance(e, TorchScheduler) else e(optimizer) for e in self.entries]
        if plateau:
            for scheduler, old in zip(self.schedulers, saved):
                if isinstance(scheduler, ReduceLROnPlateau) and old and "num_bad_epochs" in old:
                    for key in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch"):
                        setattr(scheduler, key, old[key])
            for group, rate in zip(optimizer.param_groups, rates):
                group["lr"] = rate
            return
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": replaying, on purpose
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(state.epoch if self.interval == "epoch" else state.step):
                for scheduler in self.schedulers:
                    scheduler.step()

    def _restore(self, saved: list[dict[str, Any]]) -> None:
        """Load the pending states ``saved`` into the built schedulers; they are pending no more."""
        self._pending, schedulers = None, self._built
        if len(saved) != len(schedulers):
            raise ValueError(
                f"LRScheduler: the checkpoint holds {len(saved)} scheduler state(s), this run has {len(schedulers)} scheduler(s)"
            )
        for scheduler, state in zip(schedulers, saved):
            scheduler.load_state_dict(state)

    def state_dict(self) -> dict[str, Any]:
        if self.schedulers is None:  # saved before fit start: nothing has stepped
            return {"schedulers": self._pending}
        return {"schedulers": [scheduler.state_dict() for scheduler in self.schedulers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Restored before fit start, when schedulers given as callables are not built yet.
        self._pending = state["schedulers"]
        if self.schedulers is not None and self._pending is not None:
            self._restore(self._pending)


class _PlateauMetric(MetricWatcher):
    """The metric a ReduceLROnPlateau is fed, read by the watchers' rules (its own mode and threshold compare it).

    Held, not inherited: an LRScheduler is no watcher (most schedules read no
    metric, and it has no mode of its own), so it hands this its epoch start,
    validation end and fit end.
    """

    @property
    def watcher_name(self) -> str:
        return "LRScheduler (ReduceLROnPlateau)"


def _is_plateau(entry: Any) -> bool:
    target = getattr(entry, "func", entry)  # functools.partial
    return isinstance(entry, ReduceLROnPlateau) or (isinstance(target, type) and issubclass(target, ReduceLROnPlateau))
