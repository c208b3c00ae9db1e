"""The layout of a run folder: the one place that knows its file names.

::

    <runs root>/<experiment name>/<run id>/
        config.yaml          the resolved config the run trains with
        run.json             the record: what ran, where, how it ended (record.py)
        metrics.csv          the history, one row per logged step or epoch
        curves.png           the learning curves drawn from metrics.csv at the fit's end (with matplotlib)
        log.txt              the log lines the console showed, and a failure's traceback
        checkpoints/         last.ckpt, previous.ckpt, best.ckpt, epoch=E-step=S.ckpt,
                             manifest.json and manifest.copy.json (CheckpointFolder)
        export/              safetensors exports (``expresso export``)
        eval-<split>.json    ``expresso eval``'s metrics
        predictions-<x>.csv  ``expresso predict``'s default output
        writer.lock          locked by the one process that trains into the folder (lock.py)
        tensorboard/         TensorBoard's event files (the tensorboard logger)
        clearml/             the clearml logger's cache: offline/<task id>/ (the offline session) and its .zip
        sacred/              the sacred logger's FileStorageObserver: <id>/ (run.json, config.json, metrics.json...)
        comet/               the comet logger's offline archives (<key>.zip, <key>-<suffix>.zip for a resume)
                             and a running experiment's data (tmp*/: Comet zips it when the experiment ends)
        wandb/               the wandb logger's run folders (offline-run-*/run-<id>.wandb) and wandb's logs

    <runs root>/mlflow.db    the mlflow logger's default store (SQLite), one for every run under the root,
    <runs root>/mlartifacts/ and the files it keeps (config.yaml...): ``mlflow ui`` opens all runs at once

Every command, callback and engine module asks ``RunFolder`` (or, for a
folder of checkpoints alone, ``CheckpointFolder``) for a path instead of
spelling a name; tests/unit/runs/test_run_folder_names.py keeps it so.

The run id is a sortable timestamp plus a short random suffix, and the folder
is created with ``exist_ok=False``: two runs started in the same second (or
by eight processes at once) never share a folder.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput


class RunFolderError(BadInput, ValueError):
    """A path that is not a run folder, or a checkpoint it lacks: bad input (exit 2), one line naming the path."""


@dataclass(frozen=True)
class CheckpointFolder:
    """A folder of checkpoints: a run's ``checkpoints/``, or the ``dirpath`` a Checkpoint callback was given."""

    path: Path

    LAST = "last.ckpt"  # the resume point, replaced at every save
    PREVIOUS = "previous.ckpt"  # the last.ckpt before the newest: the fallback of a damaged last.ckpt
    BEST = "best.ckpt"  # a link to the last.ckpt of the best monitored epoch
    MANIFEST = "manifest.json"  # sizes and sha256s of what was written (engine/checkpoints/manifest.py)
    MANIFEST_COPY = "manifest.copy.json"  # the same record, written after it: one damaged file verifies nothing less
    SUFFIX = ".ckpt"
    DAMAGED = ".damaged"  # a checkpoint found damaged is kept as <name>.damaged: there to look at, never loaded

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def last(self) -> Path:
        return self.path / self.LAST

    @property
    def previous(self) -> Path:
        return self.path / self.PREVIOUS

    @property
    def best(self) -> Path:
        return self.path / self.BEST

    @property
    def manifest(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def manifest_copy(self) -> Path:
        return self.path / self.MANIFEST_COPY

    def named(self, which: str) -> Path:
        """``best`` or ``last`` (a ``RUN_DIR:best`` selection) -> its file."""
        return self.path / f"{which}{self.SUFFIX}"

    @classmethod
    def top_k_name(cls, epoch: int, step: int) -> str:
        """The file name of one of the ``save_top_k`` best epochs (``epoch`` counted from 1)."""
        return f"epoch={epoch}-step={step}{cls.SUFFIX}"

    def set_aside(self, name: str) -> Path:
        """Rename the damaged checkpoint ``name`` to ``<name>.damaged`` (replacing an older one); its new path."""
        aside = self.path / f"{name}{self.DAMAGED}"
        os.replace(self.path / name, aside)
        return aside

    def has_resume_point(self) -> bool:
        """Whether ``expresso resume`` has a checkpoint to start from (last.ckpt, or its fallback)."""
        return self.last.is_file() or self.previous.is_file()


@dataclass(frozen=True)
class SacredRunFolder:
    """One Sacred run in a run folder's ``sacred/``: the files Sacred's FileStorageObserver names so."""

    path: Path

    RECORD = "run.json"  # Sacred's record: status, host, start and stop times, artifacts
    CONFIG = "config.json"
    METRICS = "metrics.json"  # {name: {steps, values, timestamps}}

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def record(self) -> Path:
        return self.path / self.RECORD

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS


@dataclass(frozen=True)
class RunFolder:
    """One run's folder: the path of each file it holds, and the choice of a checkpoint by name."""

    path: Path

    CONFIG = "config.yaml"
    RECORD = "run.json"
    HISTORY = "metrics.csv"
    CURVES = "curves.png"  # also `expresso plot`'s default output, in the working directory
    LOG = "log.txt"
    CHECKPOINTS = "checkpoints"
    EXPORTS = "export"
    LOCK = "writer.lock"  # flocked by its writer, never replaced while held (lock.py)
    TENSORBOARD = "tensorboard"
    CLEARML = "clearml"
    SACRED = "sacred"
    COMET = "comet"
    WANDB = "wandb"
    MLFLOW_STORE = "mlflow.db"  # beside the experiments, in the runs root
    MLFLOW_ARTIFACTS = "mlartifacts"
    MLFLOW_LOCK = "mlflow.db.lock"  # flocked while a run creates the store or an experiment in it

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def record(self) -> Path:
        return self.path / self.RECORD

    @property
    def history(self) -> Path:
        return self.path / self.HISTORY

    @property
    def curves(self) -> Path:
        return self.path / self.CURVES

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    @property
    def checkpoints(self) -> CheckpointFolder:
        return CheckpointFolder(self.path / self.CHECKPOINTS)

    @property
    def lock(self) -> Path:
        return self.path / self.LOCK

    @property
    def exports(self) -> Path:
        return self.path / self.EXPORTS

    @property
    def tensorboard(self) -> Path:
        return self.path / self.TENSORBOARD

    @property
    def clearml(self) -> Path:
        return self.path / self.CLEARML

    @property
    def sacred(self) -> Path:
        return self.path / self.SACRED

    def sacred_run(self, run_id: int | str) -> SacredRunFolder:
        """The folder the sacred logger's FileStorageObserver keeps Sacred run ``run_id`` in."""
        return SacredRunFolder(self.sacred / str(run_id))

    @property
    def comet(self) -> Path:
        return self.path / self.COMET

    @property
    def wandb(self) -> Path:
        return self.path / self.WANDB

    @property
    def runs_root(self) -> Path:
        """The runs root the folder was planned in: ``<runs root>/<experiment name>/<run id>``."""
        return self.path.parent.parent

    @property
    def mlflow_store(self) -> Path:
        """The SQLite file of the mlflow logger's default store, shared by the runs under the same root."""
        return self.runs_root / self.MLFLOW_STORE

    @property
    def mlflow_artifacts(self) -> Path:
        return self.runs_root / self.MLFLOW_ARTIFACTS

    @property
    def mlflow_lock(self) -> Path:
        return self.runs_root / self.MLFLOW_LOCK

    def eval_result(self, split: str) -> Path:
        return self.path / f"eval-{split}.json"

    def predictions(self, stem: str) -> Path:
        return self.path / f"predictions-{stem}.csv"

    def relative(self, path: Path) -> str:
        """``checkpoints/best.ckpt``: a path inside the folder as the record names it."""
        return Path(path).relative_to(self.path).as_posix()

    def checkpoint(self, which: str) -> Path:
        """``best``, ``last`` or a path; ``best`` falls back to ``last`` when no metric was monitored."""
        if which in ("best", "last"):
            path = self.checkpoints.named(which)
            if which == "best" and not path.is_file() and self.checkpoints.last.is_file():
                path = self.checkpoints.last
        else:
            path = Path(which)
        if not path.is_file():
            raise RunFolderError(f"{path}: checkpoint not found")
        return path

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """An existing run folder (it holds config.yaml and run.json); ``RunFolderError`` naming what is missing."""
        folder = cls(Path(path))
        try:
            missing = [file.name for file in (folder.config, folder.record) if not file.is_file()]
            found = folder.path.is_dir()
        except OSError as exc:  # a name too long, a permission error on the way
            raise RunFolderError(f"{path}: not a run folder ({exc.strerror or exc})") from None
        if not found or missing:
            raise RunFolderError(f"{path}: not a run folder (missing {', '.join(missing) or 'the folder'})")
        return folder

    @classmethod
    def planned(cls, runs_root: Path, name: str) -> RunFolder:
        """A fresh run folder (not yet created): ``<runs_root>/<name>/<timestamp>-<random>``."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        while True:
            path = Path(runs_root) / safe_name(name) / f"{stamp}-{os.urandom(3).hex()}"
            if not path.exists():
                return cls(path)

    @classmethod
    def with_id(cls, runs_root: Path, name: str, run_id: str) -> RunFolder:
        """The folder of a run with a fixed id (``--run-id``): a restarted job finds it again."""
        return cls(Path(runs_root) / safe_name(name) / safe_name(run_id))

    def create(self, *, exist_ok: bool = False) -> RunFolder:
        """Create the folder and its checkpoints folder; ``FileExistsError`` if another run took it.

        ``exist_ok``: a ``--run-id`` folder, made already to hold its lock (lock.py).
        A runs root that cannot hold it (below a regular file, read-only) is a
        ``RunFolderError`` naming the folder, not a traceback.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.mkdir(exist_ok=exist_ok)
            self.checkpoints.path.mkdir(exist_ok=exist_ok)
        except FileExistsError:
            raise
        except OSError as exc:
            raise RunFolderError(f"{self.path}: cannot create the run folder ({exc.strerror or exc})") from None
        return self


@dataclass(frozen=True)
class SweepFolder:
    """One sweep's folder: its trials are ordinary run folders inside it, beside the sweep's summary.

    ::

        <runs root>/<experiment name>/sweep-<id>/
            sweep.json       what was swept: configs, parameters, objective, and each trial's outcome
            trials.csv       one row per trial: number, status, objective, run folder, parameters
            study.db         the Optuna study (SQLite), when the sweep searches with Optuna and names no storage
            slurm/           submitit's job files, when trials run as SLURM jobs
            trial-000/       a run folder (RunFolder), one per trial
    """

    path: Path

    SUMMARY = "sweep.json"
    TABLE = "trials.csv"
    STUDY = "study.db"
    SLURM = "slurm"
    PREFIX = "sweep-"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of(cls, runs_root: Path, name: str, sweep_id: str) -> SweepFolder:
        """``<runs_root>/<name>/sweep-<id>``: the same sweep command finds the same folder again."""
        return cls(Path(runs_root) / safe_name(name) / f"{cls.PREFIX}{safe_name(sweep_id)}")

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def table(self) -> Path:
        return self.path / self.TABLE

    @property
    def study(self) -> Path:
        return self.path / self.STUDY

    @property
    def slurm(self) -> Path:
        return self.path / self.SLURM

    def trial(self, number: int) -> RunFolder:
        """Trial ``number``'s run folder (``trial-007``): numbered as the sweep (or its Optuna study) numbers them."""
        return RunFolder(self.path / f"trial-{number:03d}")


def find_runs(root: Path) -> list[RunFolder]:
    """Every folder under ``root`` (at any depth) that holds a run record, sorted by path.

    A record inside a run folder is a tracker's (the sacred logger's
    ``sacred/<id>/run.json``), not another run.
    """
    folders = {record.parent for record in Path(root).glob(f"**/{RunFolder.RECORD}")}
    return [RunFolder(folder) for folder in sorted(folders) if folders.isdisjoint(folder.parents)]


def safe_name(name: str) -> str:
    """An experiment name usable as a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "experiment"


# What the commands imported from commands/train.py before RunFolder existed: they return plain paths.
def open_run(path: str) -> Path:
    """The run folder at ``path``; ``RunFolderError`` if it is none (see ``RunFolder.open``)."""
    return RunFolder.open(path).path


def checkpoint_path(run_dir: Path, which: str) -> Path:
    """``best``, ``last`` or a path, in ``run_dir`` (see ``RunFolder.checkpoint``)."""
    return RunFolder(run_dir).checkpoint(which)
