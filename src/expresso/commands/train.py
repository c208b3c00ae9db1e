"""``expresso train``: a config checked, a run folder created, the run trained and recorded.

Everything that can be wrong with the input (config, classes, arguments,
datasets, init_from) is found before the run folder is created: a bad run
leaves nothing behind that claims to be a run.

For jobs that restart (SLURM requeues, torchrun's elastic restarts), a run
folder can have a fixed name: ``--run-id ID`` (default with
``--resume-if-exists``: the scheduler's job id). Training into an id that
holds an unfinished run resumes it with ``--resume-if-exists`` (or
``trainer.auto_resume``), from the beginning when it was stopped before its
first checkpoint; one that holds a completed run is left as it is (the
job's re-run has nothing to do: exit 0, one line says so) with
``--resume-if-exists``, refused (exit 2) without it; ``--force`` moves it
aside (nothing is deleted) and starts over.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from argparse import Namespace
from pathlib import Path
from typing import Literal

from . import UsageError, sweep, tracking

Claim = Literal["start", "resume", "completed"]  # what a --run-id folder holds for the job that trains into it


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("train", parents=[common], help="train from a config; creates a run folder")
    parser.add_argument(
        "config", metavar="CONFIG", help="a config; several configs, or a folder of them, run as a series"
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--name", help="experiment name (default: the config's name)")
    parser.add_argument("--runs-root", help="where run folders go (default: ./runs)")
    parser.add_argument(
        "--dev-run",
        type=_dev_run,
        metavar="N",
        help="N batches (an integer) or a fraction 0<N<1 of each split's batches, one epoch, run folder under a scratch root",
    )
    tracking.add_arguments(parser)
    parser.add_argument("--run-id", help="a fixed run folder name (a job id), so a restarted job finds its run again")
    parser.add_argument(
        "--resume-if-exists", action="store_true", help="if the --run-id folder holds an unfinished run, resume it"
    )
    parser.add_argument(
        "--force", action="store_true", help="if the --run-id folder holds a run, move it aside and start over"
    )
    parser.add_argument("--run-dir", help="a fixed run folder path, as --run-id but the whole path (a sweep's trial)")
    sweep.add_execution_arguments(parser)  # several configs or a series: how many at once, on which devices
    return parser


def _dev_run(text: str) -> int | float:
    """A number of batches (an integer >= 1) or a fraction of them (0 < f < 1), as trainer.limit_batches reads them."""
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            value = 0
    if not (isinstance(value, int) and value >= 1 or isinstance(value, float) and 0 < value < 1):
        raise argparse.ArgumentTypeError(
            f"expected a number of batches (an integer >= 1) or a fraction of them (0 < f < 1), received {text!r}"
        )
    return value


def run(args: Namespace) -> int:
    from ..runs.folder import RunFolder

    configs = [args.config, *(item for item in args.overrides if _names_config(item))]
    overrides = [item for item in args.overrides if not _names_config(item)]
    if args.dev_run:
        overrides += [f"trainer.limit_batches={args.dev_run}", "trainer.max_epochs=1", "trainer.limit_epochs=1"]
    runs_root = Path(args.runs_root) if args.runs_root else (_dev_root() if args.dev_run else Path("runs"))
    if _series(configs, overrides):
        return sweep.run_series(args, configs, overrides, runs_root)
    if args.jobs is not None or args.devices is not None:
        raise UsageError(f"--jobs and --devices run several configs or a series at once; {args.config} is one run")
    if args.name:
        overrides.append(f"name={args.name}")
    # the profile and --offline are checked with the config, before any run folder; applied when the loggers are built
    config, args.tracking = tracking.checked_config(args.config, overrides, args.profile, args.offline)
    if getattr(args, "debug", False):
        import torch

        torch.autograd.set_detect_anomaly(True)
    settings = config["trainer"]
    if args.run_dir:
        if args.run_id:
            raise UsageError("--run-dir and --run-id both name the run folder: give one")
        folder = RunFolder(Path(args.run_dir))
        return _fixed(args, config, folder, resume=bool(args.resume_if_exists or settings["auto_resume"]))
    run_id = args.run_id or (_scheduler_job_id() if args.resume_if_exists or settings["auto_resume"] else None)
    from . import launch
    from .follow import follow
    from .resume import follow_resume

    # more than one process: torchrun's agent runs them; under torchrun, ranks > 0 follow rank 0 (launch.py)
    if (code := launch.start(args, settings, lambda args: follow(args, follow_resume))) is not None:
        return code
    if run_id is None:
        return _start(args, config, RunFolder.planned(runs_root, config["name"]), fixed=False)
    folder = RunFolder.with_id(runs_root, config["name"], run_id)
    return _fixed(args, config, folder, resume=bool(args.resume_if_exists or settings["auto_resume"]))


def _names_config(item: str) -> bool:
    """Whether a positional argument after CONFIG is another config (an override has '=' or starts with '~')."""
    return "=" not in item and not item.startswith("~")


def _series(configs: list[str], overrides: list[str]) -> bool:
    """Whether the configs run as a sweep: several, a folder, or one with a ``series:`` list."""
    from ..config import load_config

    if len(configs) > 1 or Path(configs[0]).is_dir():
        return True
    config = load_config(configs[0], overrides)
    if "sweep" in config:
        raise UsageError(f"{configs[0]}: has a sweep: section; run it with `expresso sweep {configs[0]}`")
    return bool(config.get("series"))


def _fixed(args: Namespace, config, folder, *, resume: bool) -> int:
    """Train into a folder of a fixed name (--run-id, --run-dir), under its lock."""
    from ..runs.lock import hold

    made = _absent(folder.path.parent)  # the runs root and experiment folder, if this job is their first
    try:
        # The lock comes before the folder's state is read: of several jobs started with one id, one decides and trains.
        with hold(folder, create=True):
            if not (args.force and _moved_aside(folder)):
                return _into(args, config, folder, resume=resume)
        with hold(folder, create=True):  # the run moved aside took its lock file along: the new folder gets its own
            return _into(args, config, folder, resume=resume)
    except BaseException:
        _remove_empty(made)  # a failed start leaves no folder it made (_into removed the run folder)
        raise


def _into(args: Namespace, config, folder, *, resume: bool) -> int:
    """Train into the --run-id ``folder`` (its lock held): resume the run it holds, or start one; a failed start leaves no folder."""
    from ..runs.lock import remove_if_unused

    try:
        claim = _claimed(folder.path, resume=resume)
        if claim != "start":
            _same_config(config, folder)
        if claim == "completed":
            print(f"{folder.path}: holds a completed run; nothing to do (--force moves it aside and starts over)")
            return 0
        if claim == "resume":
            from . import resume as resume_command

            return resume_command.run(
                Namespace(
                    run_dir=str(folder.path),
                    overrides=[],
                    checkpoint=None,
                    debug=getattr(args, "debug", False),
                    profile=args.profile,
                    offline=args.offline,
                )
            )
        return _start(args, config, folder, fixed=True)
    except BaseException:
        remove_if_unused(folder)
        raise


def _start(args: Namespace, config, folder, *, fixed: bool) -> int:
    """Start a run in ``folder``: everything built (and checked) before the folder is created, then written under its lock."""
    from ..assembly import build_trainer
    from ..callbacks.preemption import Preemption
    from ..callbacks.record_summary import RecordSummary
    from ..config.experiments import experiment_of
    from ..engine.environment import versions
    from ..runs.atomic import atomic_write
    from ..runs.folder import RunFolderError
    from ..runs.lock import hold
    from ..runs.record import RunRecord
    from .launch import announce, described_world
    from .session import run_fit

    settings = config["trainer"]
    run_dir = folder.path
    announce("start", run_dir)  # the other ranks train into it with rank 0 (follow.py)
    record = RunRecord(run_dir, {})
    preemption = Preemption(folder.checkpoints.last)
    args.tracking.apply_env()
    trainer = build_trainer(
        config,
        run_dir,
        extra_callbacks=(RecordSummary(record, settings["monitor"], settings["mode"]), preemption),
        logger_options=args.tracking.by_index,
    )
    made = _absent(run_dir.parent)  # the experiment's folder, if this run is its first: removed with a failed start
    folder.create(exist_ok=fixed)
    started = False
    try:
        with hold(folder):  # a --run-id folder's is held already; a fresh folder's, before anything is written
            atomic_write(folder.config, config.to_yaml(), durable=True)
            record.data = RunRecord.fields(
                run_dir,
                name=config["name"],
                seed=settings["seed"],
                device=str(trainer.device),
                project_root=config.project_root,
                versions=versions(),
            )
            record.update(
                **args.tracking.record(),
                dev_run=args.dev_run,
                precision=trainer.stepper.precision,
                interpolations=[[list(path), raw] for path, raw in config.interpolations],
                **described_world(),
            )
            experiment = experiment_of(config.source) if config.source is not None else None
            if experiment is not None:  # predict hands its hparams to the folder's infer_config
                record.update(experiment=experiment.record())
            started = True  # from here on the folder holds a run, which records how it ends
            notes = []
            if trainer.initialised_from is not None:
                record.update(init_from=str(trainer.initialised_from))
                notes.append(
                    f"initialised the weights from {trainer.initialised_from} (init_from: {config['init_from']})"
                )
            return run_fit(trainer, record, preemption, notes)
    except BaseException as exc:
        if started:
            raise
        _discard(folder, made)  # a fresh folder's name is its own: nobody took it since the lock's release
        if not isinstance(exc, OSError):
            raise
        # A full disk or a quota before anything trained: the folder cannot hold a run, as a read-only root cannot.
        raise RunFolderError(
            f"{run_dir}: cannot write the run's first files ({exc.strerror or exc}); no run was started"
            + ("" if run_dir.exists() else " and its folder was removed")
        ) from None


def _absent(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first."""
    absent = []
    while not path.exists() and path != path.parent:
        absent.append(path)
        path = path.parent
    return absent


def _discard(folder, made: list[Path]) -> None:
    """Undo a start that failed before training: the files it wrote, then every folder it made that is empty now.

    Only ``rmdir`` removes a folder, so nothing another process put there is
    lost; a --run-id folder goes too (its caller holds its lock), as ``_into``
    would remove it.
    """
    from ..runs.lock import remove_if_unused

    for file in (folder.config, folder.record):
        with contextlib.suppress(OSError):
            file.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.checkpoints.path.rmdir()
    remove_if_unused(folder)
    _remove_empty(made)


def _remove_empty(folders: list[Path]) -> None:
    """``rmdir`` each folder, deepest first: one that holds anything (another run) stays."""
    for path in folders:
        with contextlib.suppress(OSError):
            path.rmdir()


def _dev_root() -> Path:
    """Where --dev-run puts its run folders: a scratch folder, found only when asked (tempfile probes for one by writing)."""
    import tempfile

    return Path(tempfile.gettempdir()) / "expresso-dev-runs"


def _scheduler_job_id() -> str:
    """The run id a requeued job finds again: SLURM's or torchrun's job id."""
    for variable in ("SLURM_JOB_ID", "TORCHELASTIC_RUN_ID"):
        if os.environ.get(variable):
            return os.environ[variable]
    raise UsageError(
        "--resume-if-exists (trainer.auto_resume) needs --run-id ID, or a SLURM_JOB_ID/TORCHELASTIC_RUN_ID to use as one"
    )


def _moved_aside(folder) -> bool:
    """--force: move the run the --run-id folder holds aside (nothing is deleted); whether there was one."""
    from ..runs.lock import unused

    if unused(folder):
        return False
    aside = folder.path.with_name(f"{folder.path.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
    folder.path.rename(aside)
    print(f"--force: moved the earlier run to {aside}", file=sys.stderr)
    return True


def _same_config(config, folder) -> None:
    """Refuse a re-run whose config (file and KEY=VALUEs) is not the run's: it would be ignored (resume_config.py)."""
    from ..config import load_config
    from ..runs.record import read_record
    from . import resume_config

    if not folder.config.is_file():  # nothing recorded to compare with: the run starts again from its beginning
        return
    try:
        resumes = read_record(folder.record).get("resumes") or []
    except ValueError:  # no readable run.json: no resume changed anything that it could tell
        resumes = []
    found = resume_config.job_differences(load_config(folder.config).to_dict(), config.to_dict(), resumes)
    if found:
        resume_config.refuse_job(folder.path, found)


def _claimed(run_dir: Path, *, resume: bool) -> Claim:
    """What the --run-id folder (its lock held) holds for this job: nothing to keep, a run to resume, a finished one.

    A completed run is a job's re-run finding its work done (``--resume-if-exists``,
    as the gin template's re-run): ``completed``, and the command exits 0
    without training. Without it the folder is refused: a plain ``--run-id``
    names a new run, so one already there is a mistake, not a re-run.
    """
    from ..runs.folder import RunFolder
    from ..runs.lock import unused
    from ..runs.record import read_record

    folder = RunFolder(run_dir)
    if unused(folder):
        return "start"
    try:
        status = read_record(folder.record).get("status")
    except ValueError:  # RecordError: missing, unreadable or of the wrong shape
        status = None
    # A run killed before its first checkpoint is resumable too: resume starts it again from its config.yaml.
    checkpointed = folder.checkpoints.has_resume_point()
    if resume and not checkpointed and not folder.record.is_file():
        # Killed between the folder's creation and its run.json: nothing ran, nothing was recorded; start it here.
        from ..runs.atomic import remove_temporaries

        for stale in (folder.path, folder.checkpoints.path):
            remove_temporaries(stale)
        print(f"{run_dir}: its start never finished (no {folder.RECORD}): starting it again", file=sys.stderr)
        return "start"
    resumable = checkpointed or folder.config.is_file()
    if status == "completed" and resume:
        return "completed"
    if status == "completed":
        raise UsageError(
            f"{run_dir}: holds a completed run; use another --run-id, or --force to move it aside and start over"
        )
    if resume and resumable:
        if checkpointed:  # else resume says in its one line that it starts again from the beginning
            print(f"resuming the unfinished run in {run_dir} (status {status})", file=sys.stderr)
        return "resume"
    what = (
        f"no checkpoint and no {folder.CONFIG} to resume from"
        if resume
        else f"a run (status {status}); --resume-if-exists continues it"
    )
    raise UsageError(f"{run_dir}: already holds {what}; --force moves it aside and starts over")
