"""``expresso resume RUN_DIR [KEY=VALUE ...]``: continue a run where it stopped, with these settings.

Without overrides the run continues bit for bit. With them, the run goes on
"with these settings": each change is applied on top of the checkpoint, or
the command is refused before anything is written (resume_changes.py says
which keys may change, and how). A value that followed another key when the
run started (``T_max: ${trainer.max_epochs}``) follows it again.

The record keeps the past: config.yaml holds the settings the run continues
with, and run.json's ``resumes`` holds one entry per resume: when, from which
epoch and step, the command line, and every setting it changed (from, to).
A resume that would train nothing (every epoch done, early stopping still
holding) says why and what to change, and writes nothing. config.yaml is
checked against the config the checkpoint was trained with: a difference
nothing explains is damage, refused naming each key (resume_config.py).

A run killed before its first checkpoint (no last.ckpt, no previous.ckpt)
is started again from the beginning with its recorded config: the same
seed, the same initial weights (init_from too), so it ends as an
uninterrupted run would.

The run's profile and offline mode carry over: run.json names the profile
file, which is read again (``-u USER`` takes another from its folder), and
a run started ``--offline`` stays offline (tracking.py). It says so in one line; its ``resumes`` entry has
``from: null`` and ``restarted: true``; overrides are applied as
``expresso train`` applies them (resume_changes.py). Before training, every
resume removes the temporary files a kill inside a write left in the run
folder and its checkpoints folder (metrics.csv needs nothing: a History
without a checkpoint's row count rewrites the file from its first row).
"""

from __future__ import annotations

import argparse
import os
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

from ..runs.folder import CheckpointFolder, checkpoint_path, open_run
from . import UsageError, tracking

WHAT_WOULD_TRAIN = {
    "steps": "raise trainer.max_steps to train on",
    "stopped": "raise the patience of what stopped it or remove it ('~callbacks.N'), with more epochs if needed (trainer.max_epochs=N)",
    "epochs": "raise trainer.max_epochs (or a stage's epochs, or trainer.limit_epochs) to train on",
}


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "resume",
        parents=[common],
        help="continue a run where it stopped (KEY=VALUE: with these settings from there on)",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. trainer.max_epochs=20")
    parser.add_argument("--checkpoint", help=f"a checkpoint file (default: the run's {CheckpointFolder.LAST})")
    tracking.add_arguments(parser, resume=True)
    return parser


def run(args: Namespace) -> int:
    """Resume under the run folder's writer lock: a second writer is refused before anything is read or written."""
    from ..config import load_config
    from ..runs.folder import RunFolder
    from ..runs.lock import hold
    from . import launch
    from .follow import follow

    run_dir = open_run(args.run_dir)
    try:
        settings = load_config(RunFolder(run_dir).config)["trainer"]
    except Exception:  # a damaged config.yaml: _resume says what is wrong, in its order, under the lock
        settings = None
    # more than one process (the run's trainer.devices, which a resume keeps): torchrun's agent runs them (launch.py)
    if (
        settings is not None
        and (code := launch.start(args, settings, lambda args: follow(args, follow_resume))) is not None
    ):
        return code
    with hold(RunFolder(run_dir)):
        launch.announce("resume", run_dir)  # the other ranks resume it with rank 0 (follow.py)
        return _resume(args, run_dir)


def follow_resume(args: Namespace, run_dir: Path):
    """A rank other than 0: the trainer rank 0 resumes with (``_resume``'s, nothing written); ``args`` of train or resume."""
    if not hasattr(args, "checkpoint"):  # train --resume-if-exists (or --run-dir): what train._into passes rank 0
        args = Namespace(
            run_dir=str(run_dir), overrides=[], checkpoint=None, profile=args.profile, offline=args.offline
        )
    return _resume(args, run_dir, follower=True)


def _resume(args: Namespace, run_dir: Path, follower: bool = False) -> Any:
    """Resume the run in ``run_dir``: the exit status; a ``follower`` (rank > 0) gets the restored trainer, having written nothing."""
    import socket

    from ..assembly import build_trainer
    from ..callbacks.preemption import Preemption
    from ..callbacks.record_summary import RecordSummary
    from ..config import load_config
    from ..config.callables import add_project_to_path
    from ..engine.checkpoints.manifest import resume_point
    from ..runs.atomic import atomic_write, remove_temporaries
    from ..runs.folder import RunFolder
    from ..runs.record import RunRecord, now
    from . import resume_changes, resume_config
    from .session import run_fit

    folder = RunFolder(run_dir)
    record = RunRecord(run_dir)
    add_project_to_path(Path(record.data.get("project_root") or os.getcwd()))
    restart = not args.checkpoint and not folder.checkpoints.has_resume_point()
    checkpoint: Path | None = None
    if args.checkpoint:
        checkpoint = checkpoint_path(run_dir, args.checkpoint)
    elif not restart:  # last.ckpt, or previous.ckpt when last.ckpt is damaged (saying so)
        checkpoint = resume_point(
            folder.checkpoints.path,
            log=(lambda message: None) if follower else lambda message: print(f"expresso: {message}", file=sys.stderr),
        )
    # Checked when it was written: checking again would refuse a device this machine lacks before an override could change it.
    ran_with = load_config(folder.config)
    followed = [(tuple(path), raw) for path, raw in record.data.get("interpolations") or []]
    # the profile the run was started with (read again) or -u's, offline if the run was or --offline says so
    profile_file, was_offline = tracking.recorded(record.data)
    config, track = tracking.checked_config(
        folder.config, args.overrides, args.profile, was_offline or args.offline, profile_file, followed
    )
    changes = resume_changes.diff(ran_with.to_dict(), config.to_dict())
    resume_changes.check_changes(changes, restart=restart)
    rewrite = bool(changes)  # config.yaml holds what the run continues with

    settings = config["trainer"]
    preemption = Preemption(folder.checkpoints.last)
    track.apply_env()
    trainer = build_trainer(
        config,
        run_dir,
        init_weights=restart,  # a restart starts as `train` did: init_from's weights; a resume loads its own
        extra_callbacks=(RecordSummary(record, settings["monitor"], settings["mode"]), preemption),
        logger_options=track.by_index,
    )
    if checkpoint is None:
        loop = None
        notes = [f"no checkpoint yet: starting {run_dir} again from the beginning"]
        if trainer.initialised_from is not None:
            notes.append(f"initialised the weights from {trainer.initialised_from} (init_from: {config['init_from']})")
    else:
        built = resume_changes.hyperparameters(trainer)
        payload = trainer.load_checkpoint(checkpoint)
        loop = payload["loop"]
        saved = payload.get("config")  # None: written before checkpoints held their config
        if isinstance(saved, dict):  # config.yaml is checked against it; changes count from it (resume_config.py)
            found = resume_config.untrusted(
                saved, ran_with.to_dict(), config.to_dict(), list(args.overrides), record.data.get("resumes") or []
            )
            if found:
                resume_config.refuse(folder.config, checkpoint, found)
            changes = resume_changes.diff(saved, config.to_dict())
            resume_changes.check_changes(changes)
        resume_changes.apply_changes(trainer, changes, built, schedules=set(_scheduled(config)))
        notes = [f"resuming {run_dir} from {checkpoint} (epoch {loop['epoch']}, step {loop['step']})"]
    if follower:
        return trainer
    nothing = trainer.nothing_left()
    if nothing is not None:
        kind, why = nothing
        if changes or record.data.get("status") == "completed":
            raise UsageError(f"{run_dir}: nothing to train: {why}; {WHAT_WOULD_TRAIN[kind]}")
        # Killed after its last checkpoint, before its record said so: what is left is the fit's end and the final metrics.
        notes.append(f"{why}: nothing left to train; finishing the run (final metrics, record)")

    notes += [
        f"resume changes {key}: {_shown(change.get('from'))} -> {_shown(change.get('to'))}"
        for key, change in resume_changes.describe(changes).items()
    ]
    lifted = trainer.state.extra.pop("lifted_stops", None)
    if lifted:
        notes += [
            f"{by} had stopped this run ({why}); with the new settings it does not: training on"
            for by, why in lifted.items()
        ]
    # Left by a kill inside a write: nothing else writes here while this run trains.
    for stale in (folder.path, folder.checkpoints.path):
        remove_temporaries(stale)
    if rewrite:
        atomic_write(folder.config, config.to_yaml(), durable=True)
    resumes = list(record.data.get("resumes") or [])
    ended = {
        "status": record.data.get("status")
    }  # how the segment before this one ended (a failure's error moves here)
    if record.data.get("error"):
        ended["error"] = record.data.pop("error")
    resumes.append(
        {
            "at": now(),
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "from": None if loop is None else {"epoch": loop["epoch"], "step": loop["step"]},
            **({"restarted": True} if checkpoint is None else {}),
            "after": ended,
            "overrides": list(args.overrides),
            **({"profile": args.profile} if args.profile else {}),
            **({"offline": True} if args.offline and not was_offline else {}),
            "changes": resume_changes.describe(changes),
            "command": " ".join(["expresso", *sys.argv[1:]]),
        }
    )
    if checkpoint is None:  # as `train` records a start: a summary the killed attempt wrote counts for nothing now
        record.data.update(seed=settings["seed"], device=str(trainer.device), summary={})
        if trainer.initialised_from is not None:
            record.data["init_from"] = str(trainer.initialised_from)
    record.update(
        status="running",
        ended_at=None,
        resumes=resumes,
        pid=os.getpid(),
        host=socket.gethostname(),
        precision=trainer.stepper.precision,  # what it trains with from now on (an override may change it)
        interpolations=[[list(path), raw] for path, raw in config.interpolations],
        **track.record(),
    )
    return run_fit(trainer, record, preemption, notes)


def _scheduled(config) -> list[str]:
    """The optimizers that have a schedule in ``config`` (the plain form's one optimizer is named ``optimizer``)."""
    names = ["optimizer"] if config.get("scheduler") else []
    return names + [
        name
        for name, node in (config.get("optimizers") or {}).items()
        if isinstance(node, dict) and node.get("scheduler")
    ]


def _shown(value) -> str:
    return "(unset)" if value is None else repr(value)
