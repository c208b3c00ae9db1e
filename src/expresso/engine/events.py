"""The events the loop fires, and the exceptions callbacks raise to change its course.

Each event is declared with what fires it and what ``state`` holds then
(``Event.BATCH_END.__doc__``); trainer.py's docstring draws where each fires
in the loop. The end of a step and of an epoch is two events: at
``BATCH_END``/``EPOCH_END`` handlers do the step's or the epoch's work
(schedules step, stop conditions decide, callbacks add metrics); at
``BATCH_CHECKPOINT``/``EPOCH_CHECKPOINT``, fired after every one of those
handlers, they record and save it (the history row, loggers, checkpoints),
so what they record holds every handler's work whatever the handlers'
``order``.

Control flow is exceptions, not flags scattered through the loop: a callback
raises ``SkipBatch`` to drop the rest of a batch (no backward, no step),
``StopEpoch`` to end the current epoch early, ``StopTraining`` to end the
fit after the current epoch's end: validation, history and checkpoints
still run, so the last record is complete.
"""

from __future__ import annotations

from enum import Enum


class Event(str, Enum):
    """A point of the loop where callbacks run; ``on_<value>`` is the method that handles it."""

    def __new__(cls, value: str, doc: str) -> Event:
        member = str.__new__(cls, value)
        member._value_ = value
        member.__doc__ = doc
        return member

    FIT_START = (
        "fit_start",
        "fit() begins: the weights are seeded, or restored with the whole position (state.step, epoch, stage) when "
        "it resumes; nothing is trained yet.",
    )
    STAGE_START = (
        "stage_start",
        "A stage begins, or resumes part-way (state.stage_epoch > 0): state.stage, stage_name and stage_epochs are "
        "its; its frozen models are frozen.",
    )
    EPOCH_START = (
        "epoch_start",
        "A training epoch begins, or resumes part-way (state.batch_index > 0); state.epoch_length is its number of "
        "batches when the loaders know it; the models are in training mode.",
    )
    BATCH_START = (
        "batch_start",
        "A training batch was drawn: state.batch as the loader gave it, state.pipeline its pipeline; state.step "
        "counts the steps made before it.",
    )
    AFTER_FORWARD = (
        "after_forward",
        "An update's forward and loss are computed: state.outputs holds the batch's named tensors, 'loss' and, with "
        "several terms, 'loss/<term>'; backward comes next (raise SkipBatch to drop the batch).",
    )
    AFTER_BACKWARD = (
        "after_backward",
        "The update's gradients are in the parameters' .grad (summed over the window's batches so far with "
        "accumulate_grad_batches, scaled under 16-mixed); clipping and the optimizer step come next when the batch "
        "closes its window.",
    )
    BEFORE_OPTIMIZER_STEP = (
        "before_optimizer_step",
        "Right before the update's optimizers clip and step (fired after AFTER_BACKWARD, once per update; with "
        "accumulate_grad_batches, only in the batch that closes its window).",
    )
    BATCH_END = (
        "batch_end",
        "The batch's updates are made: state.step counts it, state.batch_index counts the batches of the epoch "
        "consumed, state.outputs holds its tensors. Handlers do the step's work (a per-step schedule steps here). "
        "With accumulate_grad_batches N it fires once per optimizer step, after the batch that closes the window.",
    )
    BATCH_CHECKPOINT = (
        "batch_checkpoint",
        "Fired after every BATCH_END handler: the step is complete. Handlers record and save it; a checkpoint asked "
        "for here (or at BATCH_END) is written after this event's last handler.",
    )
    VALIDATION_START = (
        "validation_start",
        "Validation during fit begins (after the epoch's training, every val_every_n_epochs epochs, or before the "
        "first step with validate_before_fit); EVAL_BATCH_END follows for each batch.",
    )
    VALIDATION_END = (
        "validation_end",
        "Validation during fit is done: state.metrics holds its val/... values.",
    )
    EPOCH_END = (
        "epoch_end",
        "The epoch's training, and its validation when due, are done: state.metrics holds what the loop measured, "
        "state.epoch_finished is True. Handlers do the epoch's work: a schedule steps, a stop condition asks "
        "state.request_stop, a callback adds its own metrics to state.metrics.",
    )
    EPOCH_CHECKPOINT = (
        "epoch_checkpoint",
        "Fired after every EPOCH_END handler: state.metrics is the epoch's final record and state.stop says whether "
        "the stage or the fit ends now. Handlers record it (the history row, loggers, the run record) and save it: a "
        "checkpoint asked for here (or at EPOCH_END) is written after this event's last handler, so it holds "
        "every handler's work of the epoch.",
    )
    STAGE_END = (
        "stage_end",
        "A stage is over: its epochs are done, or a stop condition ended it. Not fired when the fit ends inside the "
        "stage (max_steps, StopTraining); the stage's frozen models are unfrozen before it.",
    )
    CHECKPOINT_SAVE = (
        "checkpoint_save",
        "A checkpoint is about to be written: flush what it should count (the history writes its pending rows).",
    )
    CHECKPOINT_LOAD = (
        "checkpoint_load",
        "A checkpoint was restored (weights, optimizers, callback states, RNG, position); not fired for a "
        "weights-only load (init_from).",
    )
    FIT_END = (
        "fit_end",
        "fit() is done: every stage ran, or max_steps or a stop ended it.",
    )
    EXCEPTION = (
        "exception",
        "An exception escapes fit(): state.extra['exception'] holds it; it propagates after the handlers.",
    )
    EVAL_START = (
        "eval_start",
        "A pass outside fit begins: validate(), test(), evaluate_train() or predict(); state.phase says which.",
    )
    EVAL_BATCH_END = (
        "eval_batch_end",
        "An evaluated batch (in fit's validation too): state.batch, and state.outputs with its tensors and losses.",
    )
    EVAL_END = (
        "eval_end",
        "The pass outside fit is done: state.metrics holds its values (predict: none).",
    )


class Cancel(Exception):
    """Base of the control-flow exceptions; never an error."""


class SkipBatch(Cancel):
    """Drop the current batch: no backward, no optimizer step, no metrics."""


class Rollback(Cancel):
    """Go back to the checkpoint at ``path`` and train on from there (NaNGuard's rollback).

    The loop restores the checkpoint (firing CHECKPOINT_LOAD) and trains on
    from its position; whatever the raiser wants changed after the restore
    (NaNGuard lowers the learning rates) it does at CHECKPOINT_LOAD.
    """

    def __init__(self, path, reason: str = ""):
        super().__init__(reason)
        self.path, self.reason = path, reason


class StopEpoch(Cancel):
    """End the current training epoch now; validation and checkpoints still run."""


class StopTraining(Cancel):
    """End the fit; the current epoch's end (validation, history, checkpoint) still runs."""
