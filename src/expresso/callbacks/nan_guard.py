"""NaN guard: catch a non-finite loss (or gradient) at the step it appears.

A NaN loss silently poisons every weight at the next optimizer step, and the
run then trains on garbage for hours. ``NaNGuard`` checks ``loss`` and every
``loss/<term>`` after each forward (and, with ``check_gradients``, every
gradient after backward), then, by ``action``:

- ``stop``: end the fit with an error naming the step and the tensor;
- ``skip_step``: drop the batch (no update) with a warning;
- ``rollback``: go back to the last checkpoint whose weights are finite
  (``last.ckpt``, else ``previous.ckpt``: it raises ``Rollback`` and the loop
  restores it), multiply every learning rate by ``lr_factor`` once it is
  restored (at ``CHECKPOINT_LOAD``) and train on; after ``max_rollbacks`` it
  stops. The lowered
  rate holds until a schedule sets the rate from its own base values
  (``StepLR`` scales the current rate and keeps it; ``OneCycleLR`` does not).

It is opt-in because the check is a host sync per step: the device must
finish the forward before Python can read one flag, which stalls the queue
of asynchronous work the loop otherwise keeps full. All tensors are checked
with one sync; finding which one failed costs more, but only on failure.
Without it a run still stops on a non-finite epoch loss, or before saving
non-finite weights (engine/finite.py, ``trainer.stop_on_non_finite``), but
only at the epoch's end or the next checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..engine.callback import Callback
from ..engine.events import Rollback, SkipBatch
from ..engine.finite import NonFiniteLossError, non_finite
from ..engine.state import State
from ..runs.folder import CheckpointFolder, RunFolder

ACTIONS = ("stop", "skip_step", "rollback")

log = logging.getLogger("expresso")


class NaNGuard(Callback):
    """Stops, skips or rolls back at the step a loss (or gradient) turns NaN or infinite, before it poisons the weights.

    Opt-in: the check costs a host sync per step (the module docstring says
    what each action does and why).

    Args:
        action: ``"stop"`` (raise ``NonFiniteLossError``), ``"skip_step"``
            (drop the batch, warn) or ``"rollback"`` (restore the last
            checkpoint with finite weights and lower the learning rates).
        check_gradients: check every gradient after backward too.
        lr_factor: what a rollback multiplies every learning rate by, in (0, 1].
        max_rollbacks: after this many rollbacks, the next non-finite value stops the fit.
        checkpoint: the checkpoint to roll back to (None: the run folder's last.ckpt).
    """

    order = -100  # before anything else sees the step's outputs
    phases = ("fit",)

    def __init__(
        self,
        action: str = "stop",
        check_gradients: bool = False,
        lr_factor: float = 0.5,
        max_rollbacks: int = 3,
        checkpoint: str | None = None,
    ):
        action = {"skip": "skip_step"}.get(action, action)  # the earlier name
        if action not in ACTIONS:
            raise ValueError(
                f"Invalid value for argument `action`. Received: action={action!r}; expected one of {ACTIONS}"
            )
        if not 0 < lr_factor <= 1:
            raise ValueError(
                f"Invalid value for argument `lr_factor`. Received: lr_factor={lr_factor!r}; expected a number in (0, 1]"
            )
        self.action, self.check_gradients, self.lr_factor, self.max_rollbacks = (
            action,
            check_gradients,
            lr_factor,
            max_rollbacks,
        )
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.rollbacks = (
            0  # not in the checkpoint: a rollback restores callback states, and must not forget it happened
        )
        self._rolling_back = False  # a Rollback is raised: the next CHECKPOINT_LOAD is its restore

    def on_fit_start(self, state: State) -> None:
        if self.checkpoint is None and state.run_dir is not None:
            self.checkpoint = RunFolder(state.run_dir).checkpoints.last

    def on_after_forward(self, state: State) -> None:
        losses = {
            key: value
            for key, value in state.outputs.items()
            if (key == "loss" or key.startswith("loss/")) and isinstance(value, torch.Tensor)
        }
        bad = non_finite(losses)
        if bad:
            self._fail(state, "loss", ", ".join(repr(key) for key in bad))

    def on_after_backward(self, state: State) -> None:
        if not self.check_gradients:
            return
        grads = {
            f"{model_name}.{name}": p.grad
            for model_name, model in state.models.items()
            for name, p in model.named_parameters()
            if p.grad is not None
        }
        bad = non_finite(grads)
        if bad:
            self._fail(state, "gradient of", ", ".join(bad))

    def on_checkpoint_load(self, state: State) -> None:
        if not self._rolling_back:
            return
        self._rolling_back = False
        for optimizer in state.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] *= self.lr_factor

    def _fail(self, state: State, what: str, names: str) -> None:
        # Counted from 1, as the progress lines and the history's step column count them.
        where = f"step {state.step + 1} (epoch {state.epoch + 1}, batch {state.batch_index + 1})"
        if self.action == "stop":
            raise NonFiniteLossError(f"non-finite {what} {names} at {where}; NaNGuard(action='stop') ended the fit")
        if self.action == "skip_step":
            log.warning("NaNGuard: non-finite %s %s at %s; skipping the batch", what, names, where)
            raise SkipBatch
        if self.rollbacks >= self.max_rollbacks:
            raise NonFiniteLossError(
                f"non-finite {what} {names} at {where} after {self.rollbacks} rollback(s); NaNGuard(max_rollbacks={self.max_rollbacks}) ended the fit"
            )
        if state.wait_for_checkpoints is not None:
            state.wait_for_checkpoints()  # the checkpoints it reads may still be on the writer thread
        target = self._sound_checkpoint(where)
        self.rollbacks += 1
        log.warning(
            "NaNGuard: non-finite %s %s at %s; rolling back to %s with the learning rates x%g",
            what,
            names,
            where,
            target,
            self.lr_factor,
        )
        self._rolling_back = True
        raise Rollback(target, f"non-finite {what} {names} at {where}")

    def _sound_checkpoint(self, where: str) -> Path:
        """last.ckpt, or previous.ckpt when last.ckpt already holds non-finite weights."""
        from ..engine.checkpoints.io import load_checkpoint

        if self.checkpoint is None:
            raise NonFiniteLossError(
                f"non-finite value at {where}; NaNGuard(action='rollback') needs a run folder or `checkpoint` to roll back to"
            )
        for path in (self.checkpoint, CheckpointFolder(self.checkpoint.parent).previous):
            if path.is_file():
                weights = load_checkpoint(path)["models"]
                if not non_finite(
                    {f"{m}.{k}": v for m, sd in weights.items() for k, v in sd.items() if v.is_floating_point()}
                ):
                    return path
        raise NonFiniteLossError(
            f"non-finite value at {where}, and no checkpoint with finite weights to roll back to in {self.checkpoint.parent}"
        )
