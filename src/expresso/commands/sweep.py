"""``expresso sweep CONFIG``: many runs of one config (grid, random or Optuna search), J at a time.

The sweep is planned and every trial's config checked before anything is
created (``--check`` stops there); then trials run as ordinary run folders
under ``<runs root>/<name>/sweep-<id>/trial-NNN`` beside the sweep's summary
(expresso.sweeps). The same command run again finds the same sweep (its id
is a hash of the command's plan, or ``--study NAME``) and runs only the
trials that did not complete. ``expresso train`` hands several configs, a
folder of configs and a config's ``series:`` here too (``run_series``).
"""

from __future__ import annotations

import argparse
from argparse import Namespace
from pathlib import Path

from . import UsageError, tracking


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sweep", parents=[common], help="many runs of one config: grid, random or Optuna search, J trials at once"
    )
    parser.add_argument("config", metavar="CONFIG")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="applied to every trial")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="sweep KEY over these values")
    parser.add_argument(
        "--random",
        action="append",
        default=[],
        metavar="KEY=KIND:A,B",
        help="sample KEY: choice:v1,v2 | range:start,stop[,step] | uniform:low,high | log-uniform:low,high | int:low,high",
    )
    parser.add_argument(
        "--search",
        choices=("grid", "random", "optuna"),
        help="how trials are chosen (default: sweep.search, else grid)",
    )
    parser.add_argument("--trials", type=int, metavar="N", help="random and optuna: how many trials in all")
    add_execution_arguments(parser)
    parser.add_argument(
        "--storage", metavar="URL", help="optuna: the study's storage (default: SQLite in the sweep folder)"
    )
    parser.add_argument(
        "--study", metavar="NAME", help="the sweep's id and Optuna study name (default: a hash of the command)"
    )
    parser.add_argument(
        "--worker", action="store_true", help="optuna: join the study --storage holds and run its trials"
    )
    parser.add_argument(
        "--launcher",
        choices=("local", "slurm", "submitit-local"),
        default="local",
        help="local: child processes; slurm: one SLURM job per trial (submitit); submitit-local: the same jobs on this machine",
    )
    parser.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a submitit parameter of each job (timeout_min=60, slurm_partition=gpu)",
    )
    parser.add_argument("--name", help="the sweep's experiment folder (default: the config's name)")
    parser.add_argument("--runs-root", help="where run folders go (default: ./runs)")
    parser.add_argument(
        "--check", action="store_true", help="plan the sweep and check every trial's config; run nothing"
    )
    tracking.add_arguments(parser)
    return parser


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """What train shares with sweep: how many trials at once, and on which devices."""
    parser.add_argument(
        "--jobs", type=int, metavar="J", help="trials at once (each gets 1/J of the CPU cores; default 1)"
    )
    parser.add_argument("--devices", metavar="0,1", help="GPUs dealt round-robin to the J slots (CUDA_VISIBLE_DEVICES)")


def run(args: Namespace) -> int:
    from ..config import load_config
    from ..sweeps.plan import check_trials, plan_sweep
    from ..sweeps.spec import parse

    config = load_config(args.config, args.overrides)
    if config.get("series"):  # stripped from every trial: a sweep over a series would drop it unsaid
        raise UsageError(
            f"{args.config}: has a series: list; run the series with `expresso train {args.config}`,"
            " or sweep its entries as a parameter"
        )
    settings = config["trainer"]
    spec = parse(
        config.get("sweep"),
        config.where,
        monitor=settings["monitor"],
        mode=settings["mode"],
        grid=args.grid,
        random_=args.random,
        search=args.search,
        trials=args.trials,
        jobs=args.jobs,
    )
    if not spec.search == "optuna":
        for flag in ("storage", "worker"):
            if getattr(args, flag):
                raise UsageError(
                    f"--{flag}: joins an Optuna study, and this sweep's search is {spec.search} (--search optuna)"
                )
    devices = _devices(args.devices)
    runs_root = Path(args.runs_root or "runs")
    sweep = plan_sweep(args.config, list(args.overrides), runs_root, args.name, spec, args.study, config)
    check_trials(sweep, classes=args.check)
    launcher = _launcher(args, sweep)
    if args.check:
        print(
            f"sweep {sweep.sweep_id}: {spec.search}, {sweep.budget} trial(s), {spec.objective.direction} {spec.objective.metric}; would run in {sweep.folder.path}"
        )
        return 0
    study = None
    if sweep.optuna:
        from ..sweeps.study import StudyTrials, open_study

        sweep.folder.path.mkdir(parents=True, exist_ok=True)
        storage = args.storage or f"sqlite:///{sweep.folder.study.resolve()}"
        study = StudyTrials(
            sweep,
            open_study(sweep, storage, worker=args.worker),
            storage,
            # only the sweep on its own SQLite study knows a running trial is one a killed sweep left behind
            reclaim=args.storage is None and not args.worker,
        )
    return _execute(sweep, spec.jobs, devices, launcher, study, args)


def run_series(args: Namespace, paths: list[str], overrides: list[str], runs_root: Path) -> int:
    """``expresso train`` of several configs, a folder of configs, or a config with ``series:``: a sweep of them."""
    from ..sweeps.plan import check_trials, plan_series

    for flag in ("run_id", "run_dir", "resume_if_exists", "force"):
        if getattr(args, flag, None):
            raise UsageError(
                f"--{flag.replace('_', '-')}: names one run; {' '.join(paths)} run as a series (each trial has its folder)"
            )
    jobs = args.jobs or 1
    if jobs < 1:
        raise UsageError(f"--jobs: received {jobs}, expected an integer >= 1")
    sweep = plan_series(paths, overrides, runs_root, args.name)
    check_trials(sweep, classes=False)
    return _execute(sweep, jobs, _devices(args.devices), None, None, args)


def _execute(sweep, jobs: int, devices, launcher, study, args: Namespace) -> int:
    from ..sweeps.execute import run_sweep

    passed = (["--profile", args.profile] if args.profile else []) + (["--offline"] if args.offline else [])
    return run_sweep(sweep, jobs=jobs, devices=devices, launcher=launcher, study=study, passed=passed)


def _devices(text: str | None) -> list[str] | None:
    if text is None:
        return None
    devices = [item.strip() for item in text.split(",")]
    if not all(devices):
        raise UsageError(f"--devices: received {text!r}, expected device ids separated by commas (0,1)")
    return devices


def _launcher(args: Namespace, sweep):
    """The local launcher (None: run_sweep's default), or submitit's for --launcher slurm / submitit-local."""
    import yaml

    parameters = {}
    for item in args.slurm:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--slurm: received {item!r}, expected KEY=VALUE (a submitit parameter: timeout_min=60)")
        parameters[key] = yaml.safe_load(value)
    if args.launcher == "local":
        if parameters:
            raise UsageError("--slurm: sets SLURM job parameters; it needs --launcher slurm")
        return None
    if args.check:
        return None
    from ..sweeps.launch import SubmititLauncher

    return SubmititLauncher(sweep.folder.slurm, "local" if args.launcher == "submitit-local" else "slurm", parameters)
