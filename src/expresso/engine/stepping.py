"""From a loss to the weights' update, in one place: precision, accumulation, gradient scaling, clipping, the step.

``trainer.precision`` picks the dtype ``torch.autocast`` runs the forward
and loss in (training and evaluation alike; ``predict`` stays in full
precision, so predictions are not rounded); the weights, their gradients
and the optimizer states stay float32 (Lightning's ``-mixed``).
``16-mixed`` multiplies the loss by a ``torch.amp.GradScaler``'s scale
before backward, since float16 gradients underflow; the scaler unscales
them before clipping, skips a step whose gradients overflowed, and its
scale travels in checkpoints so a resumed run scales as the uninterrupted
one does.

``trainer.accumulate_grad_batches: N`` sums the gradients of N batches (a
window) before one optimizer step, each loss divided by N: N batches of
size b make the step one batch of size N*b would make with a mean-reduced
loss. A window closes on every N-th batch of the epoch and on its last
batch (an epoch of 10 batches with N=4 steps after batches 4, 8 and 10;
the last window's loss is still divided by 4, as Lightning does), so a
window never spans two epochs and every checkpoint (written after a step
or an epoch) lies between windows: a resume never loses half-summed
gradients.

Multi-process training adds its gradient synchronisation in ``backward``
(a batch that does not close its window can skip it: DDP's ``no_sync``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ..settings import TrainerConfig
from .graph import Graph, OptimizerSpec

# trainer.precision's values, and the autocast dtype each trains in (None: none, float32 throughout)
PRECISIONS: dict[Any, torch.dtype | None] = {
    32: None,
    "32": None,
    "32-true": None,
    "bf16-mixed": torch.bfloat16,
    "16-mixed": torch.float16,
}


def precision_name(value: Any) -> str:
    """The one name of a precision: 32 and "32" are ``32-true``."""
    return "32-true" if PRECISIONS.get(value, torch.float32) is None else str(value)


def precision_problem(value: Any, device: torch.device) -> str | None:
    """Why ``trainer.precision`` cannot train on ``device`` (None: it can); what ``--check`` reports."""
    if value not in PRECISIONS:
        return f"received {value!r}, expected one of 32-true (or 32), bf16-mixed, 16-mixed"
    dtype = PRECISIONS[value]
    if dtype is None:
        return None
    if not torch.amp.is_autocast_available(device.type):
        return f"received {value!r}, but torch.autocast does not run on {device.type}; use 32-true"
    if device.type == "cuda" and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        return f"received {value!r}, but this GPU ({torch.cuda.get_device_name(device)}) has no bfloat16; use 16-mixed or 32-true"
    return None


def clip_shorthand(graph: Graph, value: float | None, algorithm: str) -> None:
    """``trainer.gradient_clip_val``/``_algorithm`` as every optimizer's own ``clip_grad_norm``/``clip_grad_value``.

    Given with an optimizer's own clipping, it is refused: two settings of
    one thing, and no rule would say which wins. Null or 0 clips nothing
    (Lightning's meaning).
    """
    if not value:
        return
    own = [
        name
        for name, spec in graph.optimizers.items()
        if spec.clip_grad_norm is not None or spec.clip_grad_value is not None
    ]
    if own:
        raise ValueError(clip_conflict(value, own))
    for spec in graph.optimizers.values():
        if algorithm == "norm":
            spec.clip_grad_norm = value
        else:
            spec.clip_grad_value = value


def clip_conflict(value: Any, optimizers: Iterable[str]) -> str:
    return (
        f"trainer.gradient_clip_val: received {value!r}, but optimizers {sorted(optimizers)} clip their own gradients "
        "(clip_grad_norm/clip_grad_value): give one of the two forms"
    )


def accumulation_problem(accumulate: int, updates: dict[str, int]) -> str | None:
    """Why ``accumulate`` batches per window cannot train pipelines making ``updates`` (name -> updates per batch).

    A pipeline of several updates per batch (a GAN's discriminator, then its
    generator) steps one model before the next update reads it: summing the
    updates' gradients over batches would step neither as configured.
    """
    several = sorted(name for name, count in updates.items() if count > 1)
    if accumulate > 1 and several:
        return (
            f"received {accumulate}, but pipeline(s) {several} make several updates per batch, each stepping its "
            "optimizers before the next: accumulation needs one update per batch (use 1)"
        )
    return None


def _api_problems(settings: TrainerConfig) -> dict[str, str]:
    """What the Python API's settings break that config validation refuses (an accumulation of 0, a clip of -1)."""
    problems = {}
    accumulate = settings.accumulate_grad_batches
    if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
        problems["accumulate_grad_batches"] = f"received {accumulate!r}, expected an integer >= 1"
    clip = settings.gradient_clip_val
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or clip < 0):
        problems["gradient_clip_val"] = f"received {clip!r}, expected a number >= 0 or null"
    if settings.gradient_clip_algorithm not in ("norm", "value"):
        problems["gradient_clip_algorithm"] = f"received {settings.gradient_clip_algorithm!r}, expected norm or value"
    return problems


class Stepper:
    """Turns losses into optimizer steps: autocast for the forward, scaled backward, windows of batches, clip, step.

    The loop asks ``closes(batch_index, epoch_length)`` whether a batch ends
    its window, calls ``backward(loss, optimizers)`` for each of its
    updates and, when it closes, ``step()``; ``discard()`` drops a window's
    gradients (a skipped or cancelled batch). ``pending`` holds the
    optimizers whose gradients wait for the window's step.
    """

    def __init__(self, graph: Graph, device: torch.device, precision: Any = "32-true", accumulate: int = 1):
        problem = precision_problem(precision, device)
        if problem:
            raise ValueError(f"trainer.precision: {problem}")
        self.graph, self.device, self.accumulate = graph, device, accumulate
        self.precision = precision_name(precision)
        self.dtype = PRECISIONS[precision]
        self.scaler = torch.amp.GradScaler(device.type) if self.dtype is torch.float16 else None
        self.pending: dict[int, OptimizerSpec] = {}  # by id: the window's optimizers, once each

    @classmethod
    def of(cls, graph: Graph, device: torch.device, settings: TrainerConfig, plans: Mapping[str, Any]) -> Stepper:
        """The run's stepper from its ``trainer`` settings; the models go channels_last and take the clipping shorthand.

        ``plans``: the pipelines' plans by name (accumulation needs one update
        per batch: ``accumulation_problem``). A ValueError names the setting.
        """
        for key, problem in _api_problems(settings).items():  # a config's --check refused these already
            raise ValueError(f"trainer.{key}: {problem}")
        updates = {name: len(plan.steps) for name, plan in plans.items()}
        if refused := accumulation_problem(settings.accumulate_grad_batches, updates):
            raise ValueError(f"trainer.accumulate_grad_batches: {refused}")
        if settings.channels_last:
            for model in graph.models.values():
                # in place: the optimizers keep their parameters (torch's stubs omit Module.to's memory_format)
                model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        clip_shorthand(graph, settings.gradient_clip_val, settings.gradient_clip_algorithm)
        return cls(graph, device, settings.precision, settings.accumulate_grad_batches)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Where the forward and the loss run: under ``torch.autocast`` in a mixed precision, as they are otherwise."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def closes(self, batch_index: int, epoch_length: int | None) -> bool:
        """Whether the batch ``batch_index`` (0-based, in its epoch) ends its window: every N-th, and the epoch's last."""
        done = batch_index + 1
        return done % self.accumulate == 0 or (epoch_length is not None and done >= epoch_length)

    def backward(self, loss: torch.Tensor, optimizers: Iterable[OptimizerSpec]) -> None:
        """Add ``loss``'s gradients (divided by N, scaled under 16-mixed) to the window's, for ``optimizers`` to step."""
        if self.accumulate > 1:
            loss = loss / self.accumulate
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward()
        for spec in optimizers:
            self.pending[id(spec)] = spec

    def step(self, overflow) -> None:
        """Clip and step every optimizer the window's gradients are for, then empty the window.

        ``overflow(exc, optimizer)`` turns an optimizer's RuntimeError into the
        error to raise instead (None: raise it as it is).
        """
        scaled = False  # the scaler checked some gradients for inf: it may update its scale
        for spec in self.pending.values():
            # the scaler records inf checks per optimizer with gradients; one without (its models frozen) steps plainly
            scaler = self.scaler if self.scaler is not None and _has_gradients(spec.optimizer) else None
            if scaler is not None and (spec.clip_grad_norm is not None or spec.clip_grad_value is not None):
                scaler.unscale_(spec.optimizer)  # the clip thresholds are for the true gradients
            spec.clip()
            try:
                if scaler is not None:
                    scaler.step(spec.optimizer)
                    scaled = True
                else:
                    spec.optimizer.step()
            except RuntimeError as exc:  # lr=1e300: torch cannot convert it to the weights' dtype
                if (error := overflow(exc, spec.optimizer)) is None:
                    raise
                raise error from exc
        if self.scaler is not None and scaled:
            self.scaler.update()
        self.discard()

    def discard(self) -> None:
        """Drop every gradient (set to None) and the window with them."""
        for spec in self.graph.optimizers.values():
            spec.optimizer.zero_grad(set_to_none=True)
        self.pending.clear()

    # -- checkpoints ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any] | None:
        """The GradScaler's state (its scale and growth count) under 16-mixed; None otherwise."""
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, saved: dict[str, Any] | None) -> None:
        """Back to a checkpoint's scale; a checkpoint of another precision (None) leaves the scaler fresh."""
        if self.scaler is not None and saved:
            self.scaler.load_state_dict(saved)


def _has_gradients(optimizer: torch.optim.Optimizer) -> bool:
    return any(p.grad is not None for group in optimizer.param_groups for p in group["params"])
