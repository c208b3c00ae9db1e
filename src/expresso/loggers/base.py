"""The logger interface: what a tracker receives from a run, and when.

A ``Logger`` is a callback; a subclass implements the methods below and the
events are wired here once:

- ``log_hyperparams``: the resolved config, once per fit (``FIT_START``),
  then ``log_artifact`` with the run folder's config.yaml.
- ``log_metrics``: the rows metrics.csv gets, with the same steps and
  values. A training row every ``log_every_n_steps`` optimizer steps
  (``train/batch_loss``; the assembly sets the attribute from
  ``trainer.log_every_n_steps``), kept as tensors until the next epoch
  row so logging costs no host sync per step, as History does; and an
  epoch's complete metrics at ``EPOCH_CHECKPOINT``, after every
  ``EPOCH_END`` handler (the trainer's values and whatever any callback
  wrote into ``state.metrics``).
- ``log_image``: a PNG a callback wrote into the run folder and handed
  over with ``state.add_image`` (``ImageGrid``'s grids), with the step it
  shows; sent after the rows of the same send, so with the epoch's metrics.
- ``log_text``: a named text a callback handed over with
  ``state.add_text`` (``ModelSummary``'s tables, ``model_summary``), once:
  at the fit's start after config.yaml for those added before, else with
  the next row.
- ``flush``: before a checkpoint counts what was sent, so a resumed run
  (which continues from the checkpoint's step) neither misses nor repeats
  a row; a tracker that writes lazily makes its rows durable here.
- ``log_summary``: the run's final metrics (``final/val/acc``...: the
  validation and test figures of the weights the run selected, best.ckpt's
  or the last, measured after the fit), at the fit's last step. Only the
  CLI measures them: it sets ``finish_at_fit_end`` to False before the fit
  and, after its final evaluation, calls ``end`` (the summary, then
  ``finish``), so the tracker run stays open until its final figures are in
  and an evaluation that fails ends it ``failed``.
- ``finish``: how the fit ended (``completed``, ``interrupted`` or
  ``failed``), also when it raised, so a tracker never shows a crashed run
  as running. A preemption (``Preempted.run_status``) and Ctrl-C are
  ``interrupted``. Only a SIGKILL leaves no word; the resumed run takes
  the same tracker run up again (the subclasses keep its id in their
  checkpoint state), and a run restarted from its beginning (killed before
  its first checkpoint) replaces what the killed start logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..engine.callback import Callback, Every
from ..engine.events import Event
from ..engine.state import State
from ..runs.folder import RunFolder

log = logging.getLogger("expresso")


class Logger(Callback):
    """The base of trackers (TensorBoard, MLflow...): subclass it and implement the methods you need; the events are wired here.

    It receives the run's resolved config once per fit (``log_hyperparams``),
    config.yaml (``log_artifact``), a training row every
    ``log_every_n_steps`` steps and every epoch's complete metrics
    (``log_metrics``), the images and texts callbacks hand over
    (``log_image``, ``log_text``) and how the fit ended (``finish``). A
    config lists such a class under ``loggers:``.
    """

    rank_zero_only = True  # it writes: rank 0 alone runs it (engine/distributed.py)

    phases = ("fit",)
    # Set from trainer.log_every_n_steps by the assembly, so the trackers get the rows metrics.csv gets.
    log_every_n_steps: int = 50
    # Whether FIT_END ends the tracker run. The CLI sets it False: it measures the selected weights after the fit and
    # ends the run itself (``end``), so the final metrics still reach an open tracker run.
    finish_at_fit_end: bool = True
    # how many of state.images and state.texts were sent this fit; None while no tracker run is open to take them
    _seen: tuple[int, int] | None = None

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        """The run's resolved config, once per fit (a resumed run sends the settings it continues with)."""

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        """One row: a training step's ``train/batch_loss``, or an epoch's values (``train/loss``, ``val/acc``, ``lr``...).

        ``epoch`` counts from 1, ``step`` is optimizer steps so far; values are floats.
        """

    def log_artifact(self, path: Path) -> None:
        """A file of the run folder (config.yaml; a checkpoint where the tracker keeps files)."""

    def log_image(self, name: str, path: Path, step: int) -> None:
        """A PNG a callback wrote into the run folder (``images/x_fake``, its path, the optimizer step it shows).

        The default does nothing: the file is in the run folder already.
        """

    def log_text(self, name: str, text: str) -> None:
        """A named text a callback made (``model_summary``: the models' parameter tables); the default does nothing."""

    def flush(self) -> None:
        """Make what was sent so far durable: a checkpoint is about to count it."""

    def log_summary(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        """The run's final metrics, once, before ``finish``: ``{"final/val/acc": ..., "final/test/loss": ...}``.

        The validation and test figures of the weights the run selected (best.ckpt's, else the last), measured
        after the fit; ``step`` and ``epoch`` are the fit's last. A tracker with a run summary puts them there;
        the default does nothing (metrics.csv has no row for them: run.json's ``summary.final`` holds them).
        """

    def finish(self, status: str) -> None:
        """How the fit ended: ``completed``, ``interrupted`` or ``failed``."""

    def end(self, status: str, summary: dict[str, float] | None = None, *, step: int = 0, epoch: int = 0) -> None:
        """End the tracker run once: ``log_summary`` (with a non-empty ``summary``), then ``finish(status)``.

        For the code that ran the fit with ``finish_at_fit_end`` off; a run the fit's exception ended already
        is left as it is. The run's files are complete by now: a tracker that cannot take its end logs one
        warning, and the run keeps the status its record has.
        """
        if getattr(self, "_ended", False):
            return
        self._ended = True
        try:
            try:
                if summary:
                    self.log_summary(summary, step=step, epoch=epoch)
            finally:
                self.finish(status)
        except Exception as exc:
            log.warning(
                "expresso: warning: %s could not record how the run ended (%s): %s", type(self).__name__, status, exc
            )

    # -- the wiring --------------------------------------------------------------------------------------
    def listens(self, event: Event) -> bool | Every:
        return Every(steps=self.log_every_n_steps) if event is Event.BATCH_END else True

    def on_fit_start(self, state: State) -> None:
        self._ended = False
        self.log_hyperparams(dict(state.config or {}))
        if state.run_dir is not None and RunFolder(state.run_dir).config.is_file():
            self.log_artifact(RunFolder(state.run_dir).config)
        self._seen = (0, 0)
        self._hand_over(state)

    def on_batch_end(self, state: State) -> None:
        if "loss" in state.outputs:
            self._pending().append(({"train/batch_loss": state.outputs["loss"].detach()}, state.step, state.epoch + 1))

    def on_epoch_checkpoint(self, state: State) -> None:
        self._pending().append((dict(state.metrics), state.step, state.epoch + 1))
        self._send(state)

    def on_checkpoint_save(self, state: State) -> None:
        self._send(state)

    def on_fit_end(self, state: State) -> None:
        self._send(state)
        self._seen = None
        if self.finish_at_fit_end:
            self.finish("completed")
            self._ended = True

    def on_exception(self, state: State) -> None:
        self._ended = True  # the fit failed: whatever comes after it cannot complete the run
        error = state.extra.get("exception")
        status = getattr(error, "run_status", "interrupted" if isinstance(error, KeyboardInterrupt) else "failed")
        # the fit's own error is what the user must see: a tracker that cannot take the news says so in one line
        try:
            try:
                self._send(state)  # the rows up to the failure: a resumed run replaces those past its checkpoint
                self._seen = None
            finally:
                self.finish(status)
        except Exception as exc:
            log.warning(
                "expresso: warning: %s could not record how the fit ended (%s): %s", type(self).__name__, status, exc
            )

    def _pending(self) -> list[tuple[dict[str, Any], int, int]]:
        if not hasattr(self, "_rows"):  # created here: a subclass's __init__ need not call this one's
            self._rows: list[tuple[dict[str, Any], int, int]] = []
        return self._rows

    def _send(self, state: State) -> None:
        rows, self._rows = self._pending(), []
        for metrics, step, epoch in rows:
            values = numbers(metrics)
            if values:
                self.log_metrics(values, step=step, epoch=epoch)
        self._hand_over(state)
        self.flush()

    def _hand_over(self, state: State) -> None:
        """The images and texts callbacks added since the last look, each once (``state.add_image``, ``add_text``)."""
        if self._seen is None:
            return  # the tracker run was not opened (the fit failed before), or the fit is over
        images, texts = self._seen
        self._seen = (len(state.images), len(state.texts))
        for image in state.images[images:]:
            self.log_image(image.name, image.path, image.step)
        for name, text in state.texts[texts:]:
            self.log_text(name, text)


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric values of a row as floats (a tensor read here, once per row); a stage name or other text is left out."""
    values = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            values[key] = float(value.item())
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            values[key] = float(value)
    return values


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"optimizer.lr": 0.003, "callbacks.0.class": ...}``: the hyperparameters trackers list.

    Lists are indexed like mappings (the key paths a config error names);
    an empty mapping or list stays as a value, so no key disappears.
    """
    if not tree or not isinstance(tree, (dict, list)):
        return {prefix: tree} if prefix else {}
    items: Iterable[tuple[Any, Any]] = tree.items() if isinstance(tree, dict) else enumerate(tree)
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
