"""What train and resume share: logging to log.txt, running the fit, recording how it ended.

After the fit, the model the run selected (best.ckpt, else the last weights)
is evaluated on the validation and test data: the final table holds only
figures of those weights, and says which they are. The last epoch's
training figures are in its progress line and in metrics.csv. The trackers
(``loggers:``) stay open past the fit for those figures (``final/val/acc``...):
they are ended here, after the final evaluation, with its outcome.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..callbacks.preemption import EXIT_PREEMPTED, Preempted, Preemption
from ..engine.checkpoints.errors import CheckpointWriteError
from ..engine.compiling import CompileError
from ..engine.distributed import barrier
from ..engine.finite import NonFiniteLossError
from ..engine.trainer import Trainer
from ..loggers import Logger
from ..runs.folder import CheckpointFolder, RunFolder
from ..runs.record import RunRecord
from .tracking import Redacting, redacted

log = logging.getLogger("expresso")


class _Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


class ConsoleHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each line.

    While the progress bar is drawn on a terminal, rich swaps ``sys.stderr``
    for a proxy that prints each line above the bar; a handler bound to the
    original stream would write into the bar's line instead
    (``... 3.9 it/s loss 0.588epoch 1/3 ...``).
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # noqa: D102 - see the class docstring
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def attach_logging(run_dir: Path | None) -> list[logging.Handler]:
    """Console (stderr) and, with a run folder, log.txt: the same lines, no progress-bar noise."""
    log.setLevel(logging.INFO)
    log.propagate = False
    handlers: list[logging.Handler] = [ConsoleHandler()]
    if run_dir is not None:
        handlers.append(logging.FileHandler(RunFolder(run_dir).log, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(_Plain())
        handler.addFilter(Redacting())  # a profile's values never reach the console or log.txt
        log.addHandler(handler)
    return handlers


def detach_logging(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        log.removeHandler(handler)
        handler.close()


def run_fit(trainer: Trainer, record: RunRecord, preemption: Preemption, notes: Sequence[str] = ()) -> int:
    """Fit (a resumed trainer has loaded its checkpoint already), evaluate the selected weights, record and print the outcome.

    ``notes`` are logged first, once log.txt exists (what a resume changed, where init_from's weights came from).
    The preemption handlers stay installed until this returns: SIGTERM or SIGUSR1 after the fit's last
    checkpoint boundary (in the final evaluation, while the record or the table is written) only sets the
    flag, so the process ends as its record says (``completed``, exit 0, one line saying the signal came late)
    instead of being killed by the signal's default action.
    """
    run_dir = record.path.parent
    handlers = attach_logging(run_dir)
    trackers = [callback for callback in trainer.callbacks.callbacks if isinstance(callback, Logger)]
    for tracker in trackers:  # ended below, with the final metrics or how their evaluation failed
        tracker.finish_at_fit_end = False
    ending = "failed"  # how the trackers a fit that raised has not ended hear of it
    preemption.install()
    try:
        for note in notes:
            log.info("%s", note)
        trainer.fit()
        barrier()  # several processes: the others read best.ckpt once this rank has written it (follow.py)
        step, epochs = trainer.state.step, trainer.state.epoch
        final = evaluate_selected(trainer, run_dir)
        # before the record says completed: a kill between the two leaves a run that resume finishes, trackers too
        for tracker in trackers:
            tracker.end(
                "completed", {f"final/{key}": value for key, value in final["metrics"].items()}, step=step, epoch=epochs
            )
        summary = dict(record.data.get("summary") or {})
        summary["final"] = final
        record.update(summary=summary)
        record.finish("completed")
    except Preempted as stop:
        ending = "interrupted"
        record.update(interrupted_by=signal.Signals(stop.signum).name)
        record.finish("interrupted")
        log.info(
            "%s: checkpoint written at step %d; resume with: expresso resume %s", stop, trainer.state.step, run_dir
        )
        if trainer.settings.requeue:
            requeue()
        return EXIT_PREEMPTED
    except (
        CheckpointWriteError,
        NonFiniteLossError,
        CompileError,
    ) as exc:  # a full disk, a diverged loss, torch.compile failing: the run cannot go on, and says why
        record_failure(record, exc)
        log.error("expresso: the run failed: %s", exc)
        return 1
    except KeyboardInterrupt:
        ending = "interrupted"
        record.update(interrupted_by=signal.SIGINT.name)
        record.finish("interrupted")
        when = "" if RunFolder(run_dir).checkpoints.has_resume_point() else " before the first checkpoint"
        log.info("interrupted%s; resume with: expresso resume %s", when, run_dir)
        return 130
    except BaseException as exc:
        record_failure(record, exc)
        raise
    else:
        print_final(run_dir, final)
        barrier()  # several processes leave together (follow.py): see distributed.teardown
        if preemption.received is not None:
            log.info(
                "%s arrived after the training's last checkpoint: the run is complete (recorded completed), nothing to resume",
                signal.Signals(preemption.received).name,
            )
        return 0
    finally:
        for tracker in trackers:  # a tracker the fit's exception or the final metrics ended already: nothing more
            tracker.end(ending)
        preemption.uninstall()
        detach_logging(handlers)


def print_final(run_dir: Path, final: dict[str, Any]) -> None:
    """The run folder and the final table on stdout."""
    print(f"run folder: {run_dir}")
    if not final["metrics"]:
        print(
            "no validation or test data: the final weights were not evaluated"
            f" (the last epoch's metrics are in {RunFolder.HISTORY})"
        )
    else:
        print(f"final metrics, {described(final)}:")
        width = max(map(len, final["metrics"]))
        for key, value in final["metrics"].items():
            print(f"  {key:<{width}}  {value:.6g}")


def evaluate_selected(trainer: Trainer, run_dir: Path) -> dict[str, Any]:
    """The validation and test metrics of one set of weights: best.ckpt's, else the last; and which they are."""
    folder = RunFolder(run_dir)
    best = folder.checkpoints.best
    if best.is_file():
        loop = trainer.load_checkpoint(best, weights_only=True)["loop"]
        final: dict[str, Any] = {"weights": folder.relative(best), "epoch": loop["epoch"], "step": loop["step"]}
    else:
        final = {"weights": "last", "epoch": trainer.state.epoch, "step": trainer.state.step}
    metrics: dict[str, float] = {}
    if trainer.has_data("val"):
        metrics.update(trainer.validate())
    if trainer.has_data("test"):
        metrics.update(trainer.test())
    if metrics:
        log.info(
            "final metrics, %s: %s", described(final), "  ".join(f"{key}={value:.6g}" for key, value in metrics.items())
        )
    final["metrics"] = metrics
    return final


def described(final: dict[str, Any]) -> str:
    """``with the weights of best.ckpt (epoch 7, step 70)``: which weights a final table measured (epochs count from 1)."""
    which = f"the weights of {CheckpointFolder.BEST}" if final["weights"] != "last" else "the last weights"
    return f"with {which} (epoch {final['epoch']}, step {final['step']})"


def record_failure(record: RunRecord, exc: BaseException) -> None:
    """run.json: ``failed`` and ``error`` (type, the message's first lines); log.txt: the whole traceback.

    The traceback goes to the file only: the console already shows its own
    (Python's, or the one-line error). A disk too full for it loses only the
    traceback; run.json, written first, still says why.
    """
    record.data["error"] = {"type": type(exc).__name__, "message": redacted(short_message(exc))}
    record.finish("failed")
    try:
        with open(RunFolder(record.path.parent).log, "a", encoding="utf-8") as file:
            file.write(redacted("".join(traceback.format_exception(exc))))
    except OSError:
        pass


def short_message(exc: BaseException, lines: int = 10, chars: int = 1000) -> str:
    """``str(exc)``, at most ``lines`` lines and ``chars`` characters (a run.json stays readable)."""
    try:
        text = str(exc).strip()
    except Exception:  # a user's exception with a broken __str__ must not keep the run "running"
        text = "<the message could not be printed>"
    kept = "\n".join(text.splitlines()[:lines])
    if len(kept) > chars:
        kept = kept[: chars - 4]
    return kept if kept == text else kept + " ..."


def requeue() -> None:
    """``scontrol requeue $SLURM_JOB_ID``: SLURM starts the job again (its command should resume: --resume-if-exists)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        log.warning("trainer.requeue is on, but this is not a SLURM job (no SLURM_JOB_ID): nothing requeued")
        return
    try:
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("scontrol requeue %s failed: %s", job, exc)
        return
    if result.returncode == 0:
        log.info("requeued SLURM job %s", job)
    else:
        log.warning("scontrol requeue %s failed (exit %d): %s", job, result.returncode, result.stderr.strip())
