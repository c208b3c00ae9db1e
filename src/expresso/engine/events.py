"""The events the loop fires, and the exceptions callbacks raise to change its course.

Control flow is exceptions, not flags scattered through the loop: a callback
raises ``SkipBatch`` to drop the rest of a batch (no backward, no step),
``StopEpoch`` to end the current epoch early, ``StopTraining`` to end the
fit after the current epoch's end: validation, history and checkpoints
still run, so the last record is complete.
"""

from __future__ import annotations

from enum import Enum


class Event(str, Enum):
    FIT_START = "fit_start"
    STAGE_START = "stage_start"
    EPOCH_START = "epoch_start"
    BATCH_START = "batch_start"
    AFTER_FORWARD = "after_forward"
    AFTER_BACKWARD = "after_backward"
    BEFORE_OPTIMIZER_STEP = "before_optimizer_step"
    BATCH_END = "batch_end"
    VALIDATION_START = "validation_start"
    VALIDATION_END = "validation_end"
    EPOCH_END = "epoch_end"
    STAGE_END = "stage_end"
    CHECKPOINT_SAVE = "checkpoint_save"
    CHECKPOINT_LOAD = "checkpoint_load"
    FIT_END = "fit_end"
    EXCEPTION = "exception"
    EVAL_START = "eval_start"  # a test or predict pass, outside fit
    EVAL_BATCH_END = "eval_batch_end"
    EVAL_END = "eval_end"


class Cancel(Exception):
    """Base of the control-flow exceptions; never an error."""


class SkipBatch(Cancel):
    """Drop the current batch: no backward, no optimizer step, no metrics."""


class Rollback(Cancel):
    """Go back to the checkpoint at ``path`` and train on from there, the learning rates scaled by ``lr_factor``."""

    def __init__(self, path, lr_factor: float, reason: str = ""):
        super().__init__(reason)
        self.path, self.lr_factor, self.reason = path, lr_factor, reason


class StopEpoch(Cancel):
    """End the current training epoch now; validation and checkpoints still run."""


class StopTraining(Cancel):
    """End the fit; the current epoch's end (validation, history, checkpoint) still runs."""
