"""NaN guard: catch a non-finite loss (or gradient) at the step it appears.

A NaN loss silently poisons every weight at the next optimizer step, and the
run then trains on garbage for hours. ``NaNGuard`` checks ``loss`` and every
``loss/<term>`` after each forward (and, with ``check_gradients``, every
gradient after backward) and either stops the fit with an error naming the
step and tensor, or skips the batch with a warning.

It is opt-in because the check is a host sync per step: the device must
finish the forward before Python can read one flag, which stalls the queue
of asynchronous work the loop otherwise keeps full. All tensors are checked
with one sync; finding which one failed costs more, but only on failure.
"""

from __future__ import annotations

import logging

import torch

from ..engine.callback import Callback
from ..engine.events import SkipBatch

log = logging.getLogger("expresso")


class NonFiniteLossError(RuntimeError):
    """A loss term (or, with ``check_gradients``, a gradient) was NaN or infinite."""


class NaNGuard(Callback):
    order = -100  # before anything else sees the step's outputs
    phases = ("fit",)

    def __init__(self, action: str = "stop", check_gradients: bool = False):
        if action not in ("stop", "skip"):
            raise ValueError(f"Invalid value for argument `action`. Received: action={action!r}; expected 'stop' or 'skip'")
        self.action, self.check_gradients = action, check_gradients

    def on_after_forward(self, state) -> None:
        losses = {key: value for key, value in state.outputs.items() if (key == "loss" or key.startswith("loss/")) and isinstance(value, torch.Tensor)}
        bad = _non_finite(losses)
        if bad:
            self._fail(state, "loss", ", ".join(repr(key) for key in bad))

    def on_after_backward(self, state) -> None:
        if not self.check_gradients:
            return
        grads = {
            f"{model_name}.{name}": p.grad
            for model_name, model in state.models.items()
            for name, p in model.named_parameters()
            if p.grad is not None
        }
        bad = _non_finite(grads)
        if bad:
            self._fail(state, "gradient of", ", ".join(bad))

    def _fail(self, state, what: str, names: str) -> None:
        # Counted from 1, as the progress lines and the history's step column count them.
        where = f"step {state.step + 1} (epoch {state.epoch + 1}, batch {state.batch_index + 1})"
        if self.action == "stop":
            raise NonFiniteLossError(f"non-finite {what} {names} at {where}; NaNGuard(action='stop') ended the fit")
        log.warning("NaNGuard: non-finite %s %s at %s; skipping the batch", what, names, where)
        raise SkipBatch


def _non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the tensors holding a NaN or an infinity; one host sync when all are finite."""
    if not tensors:
        return []
    with torch.no_grad():
        device = next(iter(tensors.values())).device  # gradients of a split model may live on several
        flags = torch.stack([torch.isfinite(t).all().to(device) for t in tensors.values()])
        if bool(flags.all()):
            return []
        return [name for name, ok in zip(tensors, flags.tolist()) if not ok]
