"""What train and resume share: logging to log.txt, running the fit, recording how it ended."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..engine.trainer import Trainer
from ..runs.folder import LOG_FILE
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


def run_fit(trainer: Trainer, record: RunRecord, resume_from: Path | None = None) -> int:
    """Fit (then test, when there is test data); record the outcome in run.json; print the result."""
    run_dir = record.path.parent
    handlers = attach_logging(run_dir)
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
    except KeyboardInterrupt:
        record.finish("interrupted")
        log.info("interrupted; resume with: expresso resume %s", run_dir)
        return 130
    except BaseException:
        record.finish("failed")
        raise
    finally:
        detach_logging(handlers)
    print(f"run folder: {run_dir}")
    width = max(map(len, metrics), default=0)
    for key, value in metrics.items():
        print(f"  {key:<{width}}  {value:.6g}")
    return 0
