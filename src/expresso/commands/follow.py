"""A rank other than 0: train the run rank 0 announced, in step with it, and write nothing.

Rank 0 runs ``train``/``resume`` as one process does and announces the run
folder (launch.py). A follower builds the same trainer (the same config, so
DDP's construction, every backward's gradient average and every metric's
sync meet rank 0's), restores what rank 0 restored, fits, waits for rank 0's
last checkpoint and evaluates the same weights: its share of the final
evaluation. The callbacks that write are rank 0's alone (``rank_zero_only``),
and so are the run folder's lock, record and log.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine import distributed


def follow(args: Namespace, resumed: Callable[[Namespace, Path], Any]) -> int:
    """Receive rank 0's decision, then train with it; the exit status. ``resumed``: resume.follow_resume (no import cycle)."""
    from ..errors import BadInput

    mode, run_dir = distributed.broadcast(None)
    try:
        if mode == "resume":
            trainer = resumed(args, Path(run_dir))
        else:
            trainer = _started(args, Path(run_dir))
    except BadInput:  # the same config and command line: rank 0 refuses them too, and says why once
        return 2
    return fit(trainer, Path(run_dir))


def _started(args: Namespace, run_dir: Path):
    """The trainer rank 0 built for a new run (its config and overrides are this process's: the same command line)."""
    from ..assembly import build_trainer
    from ..callbacks.preemption import Preemption
    from ..runs.folder import RunFolder
    from . import tracking

    overrides = list(args.overrides)
    if args.name:
        overrides.append(f"name={args.name}")
    if args.dev_run:
        overrides += [f"trainer.limit_batches={args.dev_run}", "trainer.max_epochs=1", "trainer.limit_epochs=1"]
    config, _ = tracking.checked_config(args.config, overrides, args.profile, args.offline)
    return build_trainer(config, run_dir, extra_callbacks=(Preemption(RunFolder(run_dir).checkpoints.last),))


def fit(trainer, run_dir: Path) -> int:
    """Fit, then the final evaluation rank 0 makes (session.evaluate_selected), each collective in rank 0's order."""
    from ..callbacks.preemption import EXIT_PREEMPTED, Preempted, Preemption
    from ..engine.finite import NonFiniteLossError
    from .session import evaluate_selected

    preemption = next((cb for cb in trainer.callbacks.callbacks if isinstance(cb, Preemption)), None)
    if preemption is not None:
        preemption.install()
    try:
        trainer.fit()
        distributed.barrier()  # rank 0's checkpoints are on disk: best.ckpt is read next
        evaluate_selected(trainer, run_dir)
        distributed.barrier()  # rank 0 has written its record: every rank leaves together (distributed.teardown)
    except Preempted:
        return EXIT_PREEMPTED
    except NonFiniteLossError:  # the loss is global: rank 0 fails on it too, and says so
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if preemption is not None:
            preemption.uninstall()
        sys.stdout.flush()
    return 0
