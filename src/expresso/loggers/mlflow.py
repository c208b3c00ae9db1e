"""The mlflow logger: params, metrics, config.yaml and the ending of a run in an MLflow tracking store.

By default the store is one SQLite file for every run under the runs root
(``<runs root>/mlflow.db``, artifacts in ``<runs root>/mlartifacts/``),
never the working directory: ``mlflow ui --backend-store-uri
sqlite:///runs/mlflow.db`` shows them all. ``tracking_uri`` names another
store (a tracking server's URL, another database). The MLflow experiment is
the config's ``name``, the MLflow run is named after the run folder and
tagged ``expresso.run_dir`` with its path.

Params are the flattened resolved config (``optimizer.lr``, ``callbacks.0.class``);
metrics are metrics.csv's values at its steps; a callback's image
(``ImageGrid``'s grids) is the artifact ``images/<file name>`` (the file
name holds the epoch: a resumed run that writes it again replaces it), a
callback's text (the model summary) the artifact ``<name>.txt``; the status
follows the fit: ``completed`` -> FINISHED, ``failed`` -> FAILED, ``interrupted`` -> KILLED.

Resume continues the same MLflow run: its id travels in the checkpoint. The
run is set RUNNING again; a metric's steps the interrupted process logged
after its checkpoint are not logged twice (MLflow keeps every value it is
sent: the resumed run skips the steps the store already holds, which a
deterministic resume computes to the same values). MLflow params cannot
change: a setting the resume changed is recorded as the tag ``resumed.<key>``.

A run restarted from its beginning (killed before its first checkpoint: no
MLflow run id to continue) starts a new MLflow run, and the one the killed
start left (found by the tags ``expresso.run_dir`` and
``expresso.started_at``, run.json's start time, so a run folder --force
moved aside is not taken for it) is marked KILLED, tagged
``expresso.restarted_as`` and deleted (MLflow's delete: restorable with
``mlflow runs restore``), saying so in one line: the MLflow UI shows one run
per run folder, holding the restart's values. Continuing it instead would
mix the killed start's metrics, which MLflow cannot remove, with the
restart's, which differ when the restart changed a setting.

The final metrics (``final/val/acc``..., the selected weights' figures
measured after the fit) are logged at the fit's last step, so the runs
table shows them beside the last epoch's values.

Rows are sent from a thread of the logger's own (one at a time, in order),
so a store transaction never holds up a step or a checkpoint; not MLflow's
async queue, whose shutdown, at every run's end, waits about a second for
its threads. A checkpoint instead carries the rows whose transaction had not
been confirmed when it was taken; a resume sends again those the store
turns out not to hold (a process killed with rows still queued), so no
row a checkpoint counts is lost and none is doubled. The fit's end waits
for every row before the run's status is set.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..config.loggers import missing_extra
from ..engine.state import State
from ..runs.folder import RunFolder
from ..runs.record import RecordError, read_record
from .base import Logger, flatten

log = logging.getLogger("expresso")

STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
MAX_PARAM_LENGTH = 6000  # MLflow refuses longer param values
BATCH = 100  # params (and tags) per log_batch call: MLflow's limit
METRICS_BATCH = 1000  # metrics per log_batch call: MLflow's limit


class MLflowLogger(Logger):
    """Logs the run to MLflow: params (the flattened config), metrics, config.yaml, and how it ended.

    Args:
        tracking_uri: the tracking store (None: ``sqlite:///<runs root>/mlflow.db``).
        experiment: the MLflow experiment (None: the config's ``name``).
        artifact_location: where a new experiment keeps files (None: ``<runs root>/mlartifacts/`` with the
            default store; the server's choice with a ``tracking_uri``).
        log_checkpoint: also keep best.ckpt (else last.ckpt) as an artifact when the fit completes.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        artifact_location: str | None = None,
        log_checkpoint: bool = False,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location
        self.log_checkpoint = log_checkpoint
        self.run_id: str | None = None
        self._client: Any = None
        self._run_dir: Path | None = None
        self._existing: dict[str, str] = {}  # params of the run continued
        self._logged_through: dict[str, int] = {}  # metric -> the last step the store holds, for a continued run
        # rows sent in the background, with the store's answer to come: (Future, [(key, value, ms, step)])
        self._in_flight: list[tuple[Future, list[tuple[str, float, int, int]]]] = []
        self._sender: ThreadPoolExecutor | None = None
        self._unconfirmed: list[tuple[str, float, int, int]] = []  # from the checkpoint: rows a resume checks for

    def state_dict(self) -> dict[str, Any]:
        self._confirmed()
        return {"run_id": self.run_id, "unconfirmed": [list(row) for _, rows in self._in_flight for row in rows]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")
        self._unconfirmed = [tuple(row) for row in state.get("unconfirmed", [])]

    def on_fit_start(self, state: State) -> None:
        message = missing_extra("mlflow", "mlflow", "the mlflow logger")
        if message:
            raise ImportError(message)
        from mlflow import MlflowClient

        self._run_dir = Path(state.run_dir) if state.run_dir is not None else None
        if self.tracking_uri is None and self._run_dir is None:
            raise ValueError("MLflowLogger needs `tracking_uri` or a run folder (state.run_dir)")
        folder = RunFolder(self._run_dir) if self._run_dir is not None else None
        uri = self.tracking_uri or f"sqlite:///{folder.mlflow_store.resolve()}"  # type: ignore[union-attr]
        default = self.tracking_uri is None and folder is not None
        # the shared SQLite file: one run at a time creates its tables (MlflowClient does, ~7 s) or an experiment
        with _exclusive(folder.mlflow_lock if default else None):  # type: ignore[union-attr]
            self._client = MlflowClient(tracking_uri=uri)
            continued = self._continued(uri)
            if continued is None:
                location = self.artifact_location
                if location is None and default:
                    location = folder.mlflow_artifacts.resolve().as_uri()  # type: ignore[union-attr]
                experiment_id = self._experiment(state, location)
        if continued is not None:
            self._client.update_run(self.run_id, status="RUNNING")
            self._existing = dict(continued.data.params)
            self._logged_through = {
                key: max(m.step for m in self._client.get_metric_history(self.run_id, key))
                for key in continued.data.metrics
            }
            self._send_again(state.step)
        else:
            self._existing, self._logged_through = {}, {}
            started = _started_at(self._run_dir)
            tags = {"expresso.run_dir": str(self._run_dir.resolve())} if self._run_dir is not None else {}
            if started is not None:
                tags["expresso.started_at"] = started
            # a start from the beginning: the runs an earlier start of this run folder left count for nothing
            earlier = self._earlier_starts(experiment_id, tags) if state.step == 0 and started is not None else []
            run_name = self._run_dir.name if self._run_dir is not None else None
            self.run_id = self._client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
            for run in earlier:
                self._replace(run)
        super().on_fit_start(state)

    def _send_again(self, step: int) -> None:
        """The checkpoint's unconfirmed rows (up to its ``step``) that the store does not hold: the killed process's queue."""
        from mlflow.entities import Metric

        lost = [
            Metric(key, value, ms, at)
            for key, value, ms, at in self._unconfirmed
            if self._logged_through.get(key, -1) < at <= step
        ]
        for start in range(0, len(lost), METRICS_BATCH):
            self._client.log_batch(self.run_id, metrics=lost[start : start + METRICS_BATCH])
        for metric in lost:
            self._logged_through[metric.key] = max(self._logged_through.get(metric.key, -1), metric.step)
        self._unconfirmed = []

    def wait(self) -> None:
        """Returns once the store holds every row sent so far (MLflow's error if it refused some)."""
        in_flight, self._in_flight = self._in_flight, []
        for sent, _ in in_flight:
            sent.result()

    def _confirmed(self) -> None:
        """Forget the rows the store has taken; a row it refused is one warning (the run goes on)."""
        pending = []
        for sent, rows in self._in_flight:
            if not sent.done():
                pending.append((sent, rows))
                continue
            try:
                sent.result()
            except Exception as exc:
                log.warning("expresso: warning: MLflow did not take %d metric values: %s", len(rows), exc)
        self._in_flight = pending

    def _earlier_starts(self, experiment_id: str, tags: dict[str, str]) -> list[Any]:
        """The MLflow runs (not deleted) of this run folder's start: left by a start that ended before its first checkpoint."""
        found = self._client.search_runs(
            [experiment_id], filter_string=f"tags.`expresso.started_at` = '{tags['expresso.started_at']}'"
        )
        # the path compared here, not in the filter: a path may hold quotes
        return [run for run in found if run.data.tags.get("expresso.run_dir") == tags["expresso.run_dir"]]

    def _replace(self, run: Any) -> None:
        """End (KILLED, if it still shows RUNNING), tag and delete ``run``, which this restart replaces; one line says so."""
        old, killed = run.info.run_id, run.info.status == "RUNNING"  # RUNNING: its process died, nothing ended it
        if killed:
            self._client.set_terminated(old, "KILLED")
        self._client.set_tag(old, "expresso.restarted_as", self.run_id)
        self._client.delete_run(old)
        log.info(
            "MLflow run %s, left by this run's start that %s before its first checkpoint, is %s "
            "(`mlflow runs restore --run-id %s` brings it back); the restart logs to MLflow run %s",
            old,
            "was killed" if killed else f"ended {run.info.status}",
            "marked KILLED and deleted" if killed else "deleted",
            old,
            self.run_id,
        )

    def _continued(self, uri: str) -> Any:
        """The MLflow run the checkpoint names, when the store holds it (None: a new run is started)."""
        from mlflow.exceptions import MlflowException

        if self.run_id is None:
            return None
        try:
            return self._client.get_run(self.run_id)
        except MlflowException:
            log.warning(
                "expresso: warning: MLflow run %s (from the checkpoint) is not in %s: the resumed run is logged as a new MLflow run",
                self.run_id,
                uri,
            )
            return None

    def _experiment(self, state: State, artifact_location: str | None) -> str:
        from mlflow.exceptions import MlflowException

        name = self.experiment or str((state.config or {}).get("name") or "expresso")
        found = self._client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self._client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # another run (another store client) created it meanwhile
            found = self._client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param, RunTag

        values = {_key(key): _param(value) for key, value in flatten(params).items()}
        new = [Param(key, value) for key, value in values.items() if key not in self._existing]
        changed = [
            RunTag(f"resumed.{key}", value)
            for key, value in values.items()
            if key in self._existing and self._existing[key] != value
        ]
        for start in range(0, len(new), BATCH):
            self._client.log_batch(self.run_id, params=new[start : start + BATCH])
        for start in range(0, len(changed), BATCH):
            self._client.log_batch(self.run_id, tags=changed[start : start + BATCH])

    def log_artifact(self, path: Path) -> None:
        self._client.log_artifact(self.run_id, str(path))

    def log_image(self, name: str, path: Path, step: int) -> None:
        self._client.log_artifact(self.run_id, str(path), artifact_path="images")

    def log_text(self, name: str, text: str) -> None:
        self._client.log_text(self.run_id, text, f"{name}.txt")

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [(_key(key), value, now, step) for key, value in metrics.items()]
        rows = [row for row in rows if step > self._logged_through.get(row[0], -1)]
        if rows:
            if self._sender is None:
                self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="expresso-mlflow")
            sent = self._sender.submit(self._client.log_batch, self.run_id, metrics=[Metric(*row) for row in rows])
            self._in_flight.append((sent, rows))

    def log_summary(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        self.log_metrics(metrics, step=step, epoch=epoch)  # a resume that only finishes the run skips what it holds

    def finish(self, status: str) -> None:
        if self._client is None or self.run_id is None:
            return  # the fit ended before the run was opened
        try:
            self.wait()  # every row is in the store before the run is said to have ended
        finally:
            if self._sender is not None:
                self._sender.shutdown()
                self._sender = None
        if status == "completed" and self.log_checkpoint and self._run_dir is not None:
            checkpoints = RunFolder(self._run_dir).checkpoints
            chosen = checkpoints.best if checkpoints.best.is_file() else checkpoints.last
            if chosen.is_file():
                self._client.log_artifact(self.run_id, str(chosen))
        self._client.set_terminated(self.run_id, STATUS[status])
        self._client = None


@contextlib.contextmanager
def _exclusive(path: Path | None) -> Iterator[None]:
    """Holds an exclusive flock on ``path`` (created if missing); None: no lock."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)  # a Python API run_dir may not exist yet
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _started_at(run_dir: Path | None) -> str | None:
    """When the run in ``run_dir`` was started (run.json's ``started_at``): None without a record (the Python API)."""
    if run_dir is None:
        return None
    try:
        started = read_record(RunFolder(run_dir).record).get("started_at")
    except RecordError:
        return None
    return started if isinstance(started, str) else None


def _key(key: str) -> str:
    """A name MLflow accepts (letters, digits, ``_ - . / `` and space); other characters become ``_``."""
    return re.sub(r"[^\w\-. /]", "_", str(key))


def _param(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."
