"""The default check that a fit trains on finite numbers: once per epoch and before each checkpoint, never per step.

A NaN or an infinity in the data, or a learning rate too large, makes the
loss non-finite; the optimizer step after it poisons every weight, and a run
that trains on writes those weights to last.ckpt and best.ckpt and ends
"completed". The loop already brings the epoch's mean losses to the host once
per epoch (metrics.py), so checking them there costs nothing: a non-finite
one ends the fit before that epoch's validation, history row and checkpoints.
A checkpoint written inside an epoch (``every_n_steps``, a preemption) comes
before that check, so each write first checks the weights it would hold (one
host sync per write, which the write itself syncs anyway). Either way no
checkpoint with non-finite weights is written, and the error names the last
one written (or restored), whose weights are finite.

``trainer.stop_on_non_finite: false`` turns both checks off (a model whose
parameters hold an infinity on purpose). NaNGuard (callbacks) is the per-step
check, which can also skip the batch or roll back; it costs a host sync per
step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from math import isfinite
from pathlib import Path

import torch

from .state import State

Write = Callable[[], None]  # a checkpoint's write, prepared (engine/saving.py runs it on the writer thread)


class NonFiniteLossError(RuntimeError):
    """A loss, a gradient (NaNGuard) or a weight about to be saved was NaN or infinite; the fit ends.

    ``saved`` says which checkpoint holds the last finite weights; the
    Trainer sets it as the error leaves ``fit()``, and the message ends with it.
    """

    saved: str | None = None

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}; {self.saved}" if self.saved else text


def non_finite(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the tensors holding a NaN or an infinity; one host sync when all are finite."""
    if not tensors:
        return []
    with torch.no_grad():
        device = next(iter(tensors.values())).device  # the parameters of a split model may live on several
        flags = torch.stack([torch.isfinite(t).all().to(device) for t in tensors.values()])
        if bool(flags.all()):
            return []
        return [name for name, ok in zip(tensors, flags.tolist()) if not ok]


def _position(state: State) -> str:
    """Where the loop stands, as the weights of a checkpoint written or restored now are described (counted from 1)."""
    if state.epoch_finished:  # written at an epoch's end
        return f"the end of epoch {state.epoch + 1} (step {state.step})"
    if state.batch_index == 0:  # restored from an epoch's end: the loop points at the next epoch
        return f"the end of epoch {state.epoch} (step {state.step})" if state.epoch else f"step {state.step}"
    return f"step {state.step} (epoch {state.epoch + 1}, batch {state.batch_index})"


class FiniteCheck:
    """Checks the epoch's losses and the weights of each checkpoint, and remembers the last checkpoint with finite weights."""

    def __init__(self, state: State, enabled: bool):
        self.state, self.enabled = state, enabled
        self.last: tuple[Path, str] | None = None  # (path, the position its weights are of)

    def check_epoch(self, prefixes: Iterable[str]) -> None:
        """Raise ``NonFiniteLossError`` when a training loss of the epoch (``<prefix>/loss``, ``<prefix>/loss/<term>``) is not finite."""
        if not self.enabled:
            return
        state = self.state
        bad = [
            f"{key}={value}"
            for prefix in prefixes
            for key, value in state.metrics.items()
            if (key == f"{prefix}/loss" or key.startswith(f"{prefix}/loss/")) and not isfinite(value)
        ]
        if bad:
            raise NonFiniteLossError(
                f"non-finite training loss in epoch {state.epoch + 1}: {', '.join(bad)} after step {state.step}; "
                "the epoch was not saved"
            )

    def guarding(self, prepare: Callable[[Path, bool], Write]) -> Callable[[Path, bool], Write]:
        """``prepare`` (a checkpoint's capture), refused when the weights are not finite, and remembered when done."""

        def guarded(path: Path, keep_previous: bool) -> Write:
            if self.enabled:
                self._check_weights(path)
            write = prepare(path, keep_previous)
            self.restored(path)  # its write may still be in flight: one that fails ends the run at the next wait
            return write

        return guarded

    def restored(self, path: str | Path) -> None:
        """A checkpoint was written or restored at the loop's current position: its weights are the last known finite ones."""
        position = _position(self.state)
        if self.last is None or self.last[1] != position:  # several files at one position: name the first (last.ckpt)
            self.last = (Path(path), position)

    def annotate(self, exc: BaseException) -> None:
        """A ``NonFiniteLossError`` leaving the fit ends with which checkpoint holds the last finite weights."""
        if isinstance(exc, NonFiniteLossError):
            exc.saved = self.note()

    def note(self) -> str:
        """Which checkpoint holds the last finite weights: what a non-finite error ends with."""
        if self.last is None:
            return "no checkpoint was written"
        path, position = self.last
        return f"the last checkpoint, {path}, holds the finite weights of {position}"

    def _check_weights(self, path: Path) -> None:
        parameters = {
            f"{model}.{name}": p for model, module in self.state.models.items() for name, p in module.named_parameters()
        }
        bad = non_finite(parameters)
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise NonFiniteLossError(f"non-finite weights at {_position(self.state)}: {shown}; {path} was not written")


def step_overflow(exc: RuntimeError, optimizer: torch.optim.Optimizer, state: State) -> NonFiniteLossError | None:
    """An optimizer step that could not convert a value to the weights' dtype (``lr=1e300`` for float32 weights), as a
    ``NonFiniteLossError`` naming the step and the learning rates; None for any other error.

    torch raises it as a bare RuntimeError from inside the optimizer; the run fails in one line instead.
    """
    if "without overflow" not in str(exc):
        return None
    rates = ", ".join(f"{group['lr']:g}" for group in optimizer.param_groups)
    return NonFiniteLossError(
        f"the {type(optimizer).__name__} update at step {state.step + 1} (epoch {state.epoch + 1}, batch "
        f"{state.batch_index + 1}) overflowed the weights' dtype ({exc}; lr={rates}: too large?)"
    )
