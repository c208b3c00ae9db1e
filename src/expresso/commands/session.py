"""What train and resume share: logging to log.txt, running the fit, recording how it ended."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path

from ..engine.checkpoint_io import CheckpointWriteError
from ..engine.trainer import Trainer
from ..runs.folder import LOG_FILE
from ..runs.preemption import EXIT_PREEMPTED, Preempted, Preemption
from ..runs.record import RunRecord

log = logging.getLogger("expresso")


class _Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def attach_logging(run_dir: Path | None) -> list[logging.Handler]:
    """Console (stderr) and, with a run folder, log.txt: the same lines, no progress-bar noise."""
    log.setLevel(logging.INFO)
    log.propagate = False
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if run_dir is not None:
        handlers.append(logging.FileHandler(Path(run_dir) / LOG_FILE, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(_Plain())
        log.addHandler(handler)
    return handlers


def detach_logging(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        log.removeHandler(handler)
        handler.close()


def run_fit(trainer: Trainer, record: RunRecord, preemption: Preemption, resume_from: Path | None = None) -> int:
    """Fit (then test, when there is test data); record the outcome in run.json; print the result."""
    run_dir = record.path.parent
    handlers = attach_logging(run_dir)
    preemption.install()
    try:
        if resume_from is not None:
            log.info("resuming %s from %s", run_dir, resume_from)
        metrics = trainer.fit(resume_from=resume_from)
        best = run_dir / "checkpoints" / "best.ckpt"
        if best.is_file():  # report the model the run selected, not merely the last one
            trainer.load_checkpoint(best, weights_only=True)
            log.info("final metrics with the weights of %s", best)
            if trainer.has_data("val"):
                metrics.update(trainer.validate())
        if trainer.has_data("test"):
            metrics.update(trainer.test())
        summary = dict(record.data.get("summary") or {})
        summary["final"] = metrics
        record.update(summary=summary)
        record.finish("completed")
    except Preempted as stop:
        record.update(interrupted_by=signal.Signals(stop.signum).name)
        record.finish("interrupted")
        log.info("%s: checkpoint written at step %d; resume with: expresso resume %s", stop, trainer.state.step, run_dir)
        if trainer.settings["requeue"]:
            requeue()
        return EXIT_PREEMPTED
    except CheckpointWriteError as exc:  # a full disk, a lost mount: the run cannot go on, and says why
        record_failure(record, exc)
        log.error("expresso: the run failed: %s", exc)
        return 1
    except KeyboardInterrupt:
        record.finish("interrupted")
        log.info("interrupted; resume with: expresso resume %s", run_dir)
        return 130
    except BaseException as exc:
        record_failure(record, exc)
        raise
    finally:
        preemption.uninstall()
        detach_logging(handlers)
    print(f"run folder: {run_dir}")
    width = max(map(len, metrics), default=0)
    for key, value in metrics.items():
        print(f"  {key:<{width}}  {value:.6g}")
    return 0


def record_failure(record: RunRecord, exc: BaseException) -> None:
    """run.json: ``failed`` and ``error`` (type, the message's first lines); log.txt: the whole traceback.

    The traceback goes to the file only: the console already shows its own
    (Python's, or the one-line error). A disk too full for it loses only the
    traceback; run.json, written first, still says why.
    """
    record.data["error"] = {"type": type(exc).__name__, "message": short_message(exc)}
    record.finish("failed")
    try:
        with open(record.path.parent / LOG_FILE, "a", encoding="utf-8") as file:
            file.write("".join(traceback.format_exception(exc)))
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
