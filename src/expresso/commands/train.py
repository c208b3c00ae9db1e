"""``expresso train`` and ``expresso resume``.

Everything that can be wrong with the input (config, classes, arguments,
datasets, init_from) is found before the run folder is created: a bad run
leaves nothing behind that claims to be a run.
"""

from __future__ import annotations

import os
import sys
import tempfile
from argparse import Namespace
from pathlib import Path

from . import UsageError

DEV_ROOT = Path(tempfile.gettempdir()) / "expresso-dev-runs"


def train(args: Namespace) -> int:
    from ..config import load_config
    from ..engine.build import build_trainer
    from ..runs.folder import CONFIG_FILE, create_run_dir, plan_run_dir
    from ..runs.record import RecordSummary, RunRecord
    from .session import run_fit

    overrides = list(args.overrides)
    if args.name:
        overrides.append(f"name={args.name}")
    if args.dev_run:
        overrides += [f"trainer.limit_batches={args.dev_run}", "trainer.max_epochs=1", "trainer.limit_epochs=1"]
    if args.offline:
        os.environ["EXPRESSO_OFFLINE"] = "1"
    config = load_config(args.config, overrides, check=True)
    if getattr(args, "debug", False):
        import torch

        torch.autograd.set_detect_anomaly(True)
    runs_root = Path(args.runs_root) if args.runs_root else (DEV_ROOT if args.dev_run else Path("runs"))
    run_dir = plan_run_dir(runs_root, config["name"])
    settings = config["trainer"]
    record = RunRecord(run_dir, {})
    trainer = build_trainer(config, run_dir, extra_callbacks=(RecordSummary(record, settings["monitor"], settings["mode"]),))
    create_run_dir(run_dir)
    (run_dir / CONFIG_FILE).write_text(config.to_yaml())
    record.data = RunRecord.fields(
        run_dir, name=config["name"], seed=settings["seed"], device=str(trainer.device), project_root=config.project_root
    )
    record.update(offline=bool(args.offline), dev_run=args.dev_run)
    return run_fit(trainer, record)


def resume(args: Namespace) -> int:
    from ..config import load_config
    from ..config.callables import add_project_to_path
    from ..engine.build import build_trainer
    from ..runs.folder import CONFIG_FILE
    from ..runs.record import RecordSummary, RunRecord, now
    from .session import run_fit

    run_dir = open_run(args.run_dir)
    record = RunRecord(run_dir)
    add_project_to_path(Path(record.data.get("project_root") or os.getcwd()))
    checkpoint = checkpoint_path(run_dir, args.checkpoint or "last")
    config = load_config(run_dir / CONFIG_FILE, args.overrides, check=True)
    settings = config["trainer"]
    trainer = build_trainer(
        config, run_dir, init_weights=False, extra_callbacks=(RecordSummary(record, settings["monitor"], settings["mode"]),)
    )
    if args.overrides:
        (run_dir / CONFIG_FILE).write_text(config.to_yaml())
    resumes = list(record.data.get("resumes") or [])
    resumes.append({"at": now(), "checkpoint": str(checkpoint), "overrides": list(args.overrides), "command": " ".join(["expresso", *sys.argv[1:]])})
    record.update(status="running", ended_at=None, resumes=resumes)
    return run_fit(trainer, record, resume_from=checkpoint)


def open_run(path: str) -> Path:
    from ..runs.folder import CONFIG_FILE, RECORD_FILE

    run_dir = Path(path)
    missing = [name for name in (CONFIG_FILE, RECORD_FILE) if not (run_dir / name).is_file()]
    if not run_dir.is_dir() or missing:
        raise UsageError(f"{path}: not a run folder (missing {', '.join(missing) or 'the folder'})")
    return run_dir


def checkpoint_path(run_dir: Path, which: str) -> Path:
    """``best``, ``last`` or a path; ``best`` falls back to ``last`` when no metric was monitored."""
    folder = run_dir / "checkpoints"
    if which in ("best", "last"):
        path = folder / f"{which}.ckpt"
        if which == "best" and not path.is_file() and (folder / "last.ckpt").is_file():
            path = folder / "last.ckpt"
    else:
        path = Path(which)
    if not path.is_file():
        raise UsageError(f"{path}: checkpoint not found")
    return path
