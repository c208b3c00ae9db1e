"""The sacred logger: the config, metrics, config.yaml and the ending of a run as a Sacred run.

``loggers: [csv, sacred]`` writes a FileStorageObserver's folder into the
run folder, ``<run>/sacred/<id>/`` (``config.json``, ``run.json`` with the
status and host, ``metrics.json``, ``cout.txt``, config.yaml);
``{class: expresso.loggers.SacredLogger, url: mongodb://...}`` sends the same
to a MongoObserver instead (Omniboard, Sacredboard). The Sacred experiment is
the config's ``name``, its command ``fit``.

No Sacred main function runs the fit: the logger builds a
``sacred.Experiment`` with the resolved config, creates its ``Run`` (the
config, experiment and host info Sacred collects) and gives the observer
the events ``Run`` itself would: ``started_event`` when the fit starts,
``log_metrics`` and ``heartbeat_event`` whenever the fit flushes (before
every checkpoint: no heartbeat thread), then ``completed_event``,
``failed_event`` (with the traceback) or ``interrupted_event``
(``INTERRUPTED``). Metrics go through ``Run.log_scalar(name, value,
step)`` with metrics.csv's names, values and steps. A callback's image
(``ImageGrid``'s grids) is an artifact under its file name (which holds
the epoch: a resumed run that writes it again replaces the copy, listed
once); a callback's
text (the model summary) is a value of the run's ``info`` (run.json). ``config.json`` is the
resolved config as config.yaml holds it: the random top-level ``seed``
Sacred adds to a config without one is left out (the fit seeds from
``trainer.seed``).

Resume continues the same Sacred run (its id travels in the checkpoint):
the file observer takes up the run's folder again, after dropping the steps
of metrics.json past the checkpoint's step (the resumed run logs them
again), so each step is there once; ``run.json`` keeps the first start
time. A MongoObserver continues the run's document (Sacred's
``overwrite``), with the same cut in its metrics collection (not tested
without a MongoDB server).
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import logging
import os
import traceback
import warnings
from pathlib import Path
from typing import Any

from ..config.loggers import missing_extra
from ..engine.state import State
from ..runs.atomic import atomic_write
from ..runs.folder import RunFolder
from .base import Logger

log = logging.getLogger("expresso")

STATUS = {"completed": "COMPLETED", "failed": "FAILED", "interrupted": "INTERRUPTED"}


def fit() -> None:
    """The command a Sacred run of expresso names (``run.json``'s ``command``); Sacred never calls it."""


class SacredLogger(Logger):
    """Logs the run as a Sacred run: config, metrics, config.yaml and its status, to a file or MongoDB observer.

    Args:
        url: a MongoDB URL: a MongoObserver instead of the FileStorageObserver in the run folder's ``sacred/``.
        db_name: the MongoDB database (with ``url``).
        experiment: the Sacred experiment's name (None: the config's ``name``).
    """

    def __init__(self, url: str | None = None, db_name: str = "sacred", experiment: str | None = None) -> None:
        self.url = url
        self.db_name = db_name
        self.experiment = experiment
        self.run_id: int | str | None = None
        self._run: Any = None
        self._observer: Any = None
        self._error: BaseException | None = None
        self._continued_info: dict[str, Any] = {}  # a continued MongoDB run's info: its metrics' references
        self._kept_artifacts: list[str] = []  # a continued file run's artifacts, listed in its run.json

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")

    def on_fit_start(self, state: State) -> None:
        message = missing_extra("sacred", "sacred", "the sacred logger")
        if message:
            raise ImportError(message)
        with warnings.catch_warnings():  # sacred imports pkg_resources, which warns of its own removal
            warnings.simplefilter("ignore")
            from sacred import Experiment

        config = dict(state.config or {})
        if self.url is None and state.run_dir is None:
            raise ValueError("SacredLogger needs `url` or a run folder (state.run_dir)")
        if self.url is not None and importlib.util.find_spec("pymongo") is None:
            raise ImportError(
                "the sacred logger with `url` (a MongoObserver) needs the pymongo package: pip install pymongo"
            )
        self._error, self._continued_info, self._kept_artifacts = None, {}, []
        continued, started = self._observe(state)
        experiment = Experiment(
            self.experiment or str(config.get("name") or "expresso"),
            interactive=True,  # no main file: the fit is not a Sacred main function
            base_dir=os.getcwd(),  # the project the run was started in (else this module's folder)
            save_git_info=False,  # run.json of the run folder has the commit
        )
        experiment.logger = logging.getLogger("expresso.sacred")
        # the run's source is its config (config.yaml, an artifact), not this module, which Sacred would record
        experiment.mainfile, experiment.sources = None, set()
        experiment.command(fit)
        experiment.add_config(config)
        experiment.observers.append(self._observer)
        self._run = run = experiment._create_run(command_name="fit")
        if "seed" not in config:
            run.config.pop("seed", None)
        run.start_time = started or _now()
        self.run_id = self._observer.started_event(
            ex_info=run.experiment_info,
            command="fit",
            host_info=run.host_info,
            start_time=run.start_time,
            config=run.config,
            meta_info=run.meta_info,
            _id=continued,
        )
        run._id, run.status = self.run_id, "RUNNING"
        if self._kept_artifacts:  # Sacred's start lists none: those the run's folder holds stay listed
            self._observer.run_entry["artifacts"] = self._kept_artifacts
        super().on_fit_start(state)

    def _observe(self, state: State) -> tuple[int | str | None, datetime.datetime | None]:
        """The observer, and the run the checkpoint names and its start time (None: a new run)."""
        if self.url is not None:
            from sacred.observers import MongoObserver

            continued = int(self.run_id) if self.run_id is not None else None
            self._observer = MongoObserver(url=self.url, db_name=self.db_name, overwrite=continued)
            if continued is not None:
                self._cut_mongo(continued, state.step)
            return continued, None
        folder = RunFolder(state.run_dir)  # type: ignore[arg-type]
        self._observer = _continuing_file_observer(folder.sacred)
        if self.run_id is None:
            return None, None
        held = folder.sacred_run(self.run_id)
        if not held.record.is_file():
            log.warning(
                "expresso: warning: Sacred run %s (from the checkpoint) is not in %s: the resumed run is logged as a "
                "new Sacred run",
                self.run_id,
                folder.sacred,
            )
            return None, None
        _cut_file(held.metrics, state.step)
        record = json.loads(held.record.read_text(encoding="utf-8"))
        self._kept_artifacts = [name for name in record.get("artifacts", []) if (held.path / name).is_file()]
        start = record.get("start_time")
        return self.run_id, datetime.datetime.fromisoformat(start) if start else None

    def _cut_mongo(self, run_id: int, step: int) -> None:
        """Drop the measurements past ``step`` from the metrics of run ``run_id``, keeping its metrics' references."""
        for entry in self._observer.metrics.find({"run_id": run_id}):
            keep = [index for index, at in enumerate(entry["steps"]) if at <= step]
            cut = {key: [entry[key][index] for index in keep] for key in ("steps", "values", "timestamps")}
            self._observer.metrics.update_one({"_id": entry["_id"]}, {"$set": cut})
        self._continued_info = dict(self._observer.overwrite.get("info") or {})

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        """Nothing more to send: Sacred received the config when the run started (config.json)."""

    def log_artifact(self, path: Path) -> None:
        if path.name in self._artifacts() and hasattr(self._observer, "save_file"):
            self._observer.save_file(os.path.abspath(path), path.name)  # a continued file run's: its copy replaced
            return
        self._observer.artifact_event(name=path.name, filename=os.path.abspath(path))

    def log_image(self, name: str, path: Path, step: int) -> None:
        self.log_artifact(path)  # a resumed run's image of an epoch the run lists replaces its copy

    def log_text(self, name: str, text: str) -> None:
        self._run.info[name] = text  # sent with the next heartbeat (flush)

    def _artifacts(self) -> list[str]:
        entry = getattr(self._observer, "run_entry", None) or {}
        return list(entry.get("artifacts", []))

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        for key, value in metrics.items():
            self._run.log_scalar(key, value, step)

    def flush(self) -> None:
        """What ``Run``'s heartbeat does: the measurements since the last one to the observer, and the time."""
        if self._run is None:
            return
        from sacred.metrics_logger import linearize_metrics

        if self._continued_info:  # a continued MongoDB run keeps its metrics' references
            self._run.info.update(self._continued_info)
            self._continued_info = {}
        self._observer.log_metrics(linearize_metrics(self._run._metrics.get_last_metrics()), info=self._run.info)
        self._observer.heartbeat_event(info=self._run.info, captured_out="", beat_time=_now(), result=None)

    def on_exception(self, state: State) -> None:
        self._error = state.extra.get("exception")
        super().on_exception(state)

    def finish(self, status: str) -> None:
        if self._run is None:
            return  # the fit ended before the run was started
        run, self._run = self._run, None
        run.status, run.stop_time = STATUS[status], _now()
        if status == "completed":
            self._observer.completed_event(stop_time=run.stop_time, result=None)
        elif status == "failed":
            error = self._error
            trace = traceback.format_exception(error) if error is not None else ["the fit failed\n"]
            self._observer.failed_event(fail_time=run.stop_time, fail_trace=trace)
        else:
            self._observer.interrupted_event(interrupt_time=run.stop_time, status=STATUS[status])
        self._observer.join()


def _now() -> datetime.datetime:
    """The time as Sacred records it: UTC, without a time zone."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _continuing_file_observer(basedir: Path) -> Any:
    """A FileStorageObserver whose ``started_event``, given the id of a run whose folder exists, takes that folder up.

    Sacred's own makes a new folder for every start and refuses an existing
    id; everything else (what run.json, config.json and metrics.json hold)
    is Sacred's.
    """
    from sacred.observers import FileStorageObserver

    class ContinuingFileStorageObserver(FileStorageObserver):
        def _make_run_dir(self, _id: Any) -> None:
            folder = os.path.join(self.basedir, str(_id))
            if _id is not None and os.path.isdir(folder):
                self.dir = folder
                return
            super()._make_run_dir(_id)

    return ContinuingFileStorageObserver(basedir)


def _cut_file(path: Path, step: int) -> None:
    """Rewrite a FileStorageObserver's metrics.json (``{name: {steps, values, timestamps}}``) without the steps past ``step``."""
    if not path.is_file():
        return
    metrics = json.loads(path.read_text(encoding="utf-8"))
    for series in metrics.values():
        keep = [index for index, at in enumerate(series["steps"]) if at <= step]
        for key in ("steps", "values", "timestamps"):
            series[key] = [series[key][index] for index in keep]
    atomic_write(path, json.dumps(metrics, sort_keys=True, indent=2), durable=False)
