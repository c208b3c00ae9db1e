"""The comet logger: params, metrics, config.yaml and the ending of a run as a Comet experiment, offline by default.

Without credentials (no ``api_key`` option and no ``COMET_API_KEY`` in the
environment), or with ``offline: true`` (what ``--offline`` sets), the run
is an offline experiment: an archive in the run folder's ``comet/``,
``<experiment key>-<suffix>.zip``, written when the fit ends, that
``comet upload`` sends later (with the key in the environment then). With credentials and
not ``offline: true`` it is an online experiment in ``workspace`` /
``project_name``; ``offline: false`` goes online with Comet's own
credentials too (``~/.comet.config``), which are not consulted for the
default choice.

Params are the flattened resolved config (``optimizer.lr``); metrics are
metrics.csv's values at its steps, with their epoch; config.yaml is an
asset; a callback's image (``ImageGrid``'s ``images/x_fake``) is a Comet
image of that name at its step, a callback's text (the model summary) the
asset ``<name>.txt``; how the fit ended is the Other value ``status``
(``completed``, ``failed``, ``interrupted``). Comet's automatic logging (source code, git,
console output, command-line arguments, environment and system metrics) is
off: run.json and log.txt hold those, and nothing runs beside the fit.

Resume continues the same experiment: its key (chosen here) travels in the
checkpoint, and every experiment is started with Comet's
``mode="get_or_create"``. Offline, Comet cannot append to an archive: each
process writes its own, ``<key>-<suffix>.zip``, and Comet's upload creates
the experiment from whichever comes first and appends the others, in any
order: ``comet upload runs/<name>/<run>/comet/*.zip``. The steps earlier
archives hold are not logged again, nor an image at those steps (Comet
keeps every value it is sent; a deterministic resume computes those steps
to the same values). A process
killed before its end leaves no archive, only Comet's data folder
(``comet/<key>.running/``, where this logger points Comet's temporary
files): the resumed run zips it into the archive that process would have
written (its last, cut-short line dropped), then continues. Online, a
resumed run continues the experiment and steps are not checked against the
server.

Writes outside the run folder: none by Comet's own code in offline mode
(no network either: Comet's error reporting is switched off before it is
imported); importing ``comet_ml`` imports matplotlib, which creates its
font cache in ``~/.cache/matplotlib`` once per machine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from ..config.loggers import missing_extra
from ..engine.state import State
from ..runs.folder import RunFolder
from .base import Logger, flatten
from .isolation import environment, own_random_state, temporary_files_in

log = logging.getLogger("expresso")

RUNNING = ".running"  # <key>.running/: Comet's data folder of the experiment a process is writing
DATA_FILE = "messages.json"  # where Comet's offline streamer writes each message, one JSON line
FLUSH_TIMEOUT_S = 10.0
# Comet's automatic logging, all off: expresso sends what is logged, and nothing else runs beside the fit
QUIET = {
    "log_code": False,
    "log_graph": False,
    "auto_param_logging": False,
    "auto_metric_logging": False,
    "parse_args": False,
    "auto_output_logging": False,
    "log_env_details": False,
    "log_git_metadata": False,
    "log_git_patch": False,
    "log_env_gpu": False,
    "log_env_cpu": False,
    "log_env_host": False,
    "log_env_network": False,
    "log_env_disk": False,
    "display_summary_level": 0,
}
IMAGE = "image:"  # an image's name in the archives' last steps, apart from a metric's
MODE = "get_or_create"  # Comet's start mode: a new experiment, or the one the key names


class CometLogger(Logger):
    """Logs the run to Comet: params (the flattened config), metrics, config.yaml, and how it ended.

    Args:
        api_key: a Comet API key (None: ``COMET_API_KEY`` from the environment, else offline).
        workspace: the Comet workspace (None: the key's default).
        project_name: the Comet project (None: the config's ``name``).
        offline: True: an offline archive even with credentials (``--offline`` sets it); False: online; None: online
            exactly when there are credentials.
        offline_directory: where offline archives go (None: the run folder's ``comet/``).
    """

    def __init__(
        self,
        api_key: str | None = None,
        workspace: str | None = None,
        project_name: str | None = None,
        offline: bool | None = None,
        offline_directory: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.workspace = workspace
        self.project_name = project_name
        self.offline = offline
        self.offline_directory = offline_directory
        self.experiment_key: str | None = None
        self._experiment: Any = None
        self._folder: Path | None = None
        self._logged_through: dict[str, int] = {}  # metric -> the last step earlier archives hold

    def __repr__(self) -> str:  # the key is a credential: never in a log line
        return (
            f"CometLogger(workspace={self.workspace!r}, project_name={self.project_name!r}, offline={self.offline!r})"
        )

    def state_dict(self) -> dict[str, Any]:
        return {"experiment_key": self.experiment_key}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.experiment_key = state.get("experiment_key")

    def _credentials(self) -> str | None:
        return self.api_key or os.environ.get("COMET_API_KEY") or None

    def on_fit_start(self, state: State) -> None:
        message = missing_extra("comet_ml", "comet", "the comet logger")
        if message:
            raise ImportError(message)
        offline = self.offline if self.offline is not None else self._credentials() is None
        project = self.project_name or str((state.config or {}).get("name") or "expresso")
        key = self.experiment_key or uuid.uuid4().hex  # chosen here: the data folder of an offline run is named by it
        name = Path(state.run_dir).name if state.run_dir is not None else None
        settings: dict[str, Any] = {"name": name, **QUIET}
        self._folder, self._logged_through = None, {}
        running: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if offline:
            folder = self._offline_folder(state)
            _salvage(folder, key, self.workspace, project)
            self._logged_through = _logged_through(_archives(folder, key))
            settings["offline_directory"] = str(folder)
            # Comet keeps an offline run's data in a temporary folder until it makes the archive: in the run folder
            running = temporary_files_in(folder / f"{key}{RUNNING}")
        # read by Comet as it is imported and starts: offline, no error reports (no network at all); its notes
        # (import order, upload command) would interleave the progress, unless the user set their level
        variables = {"COMET_ERROR_TRACKING_ENABLE": "false"} if offline else {}
        variables["COMET_LOGGING_CONSOLE"] = os.environ.get("COMET_LOGGING_CONSOLE", "error")
        # Comet names archives from `random`: the run's random stream stays its own
        with environment(variables), running, own_random_state():
            import comet_ml

            self._experiment = comet_ml.start(
                api_key=None if offline else self._credentials(),
                workspace=self.workspace,
                project_name=project,
                experiment_key=key,
                mode=MODE,
                online=not offline,
                experiment_config=comet_ml.ExperimentConfig(**settings),
            )
        self.experiment_key = key
        super().on_fit_start(state)

    def _offline_folder(self, state: State) -> Path:
        if self.offline_directory is not None:
            folder = Path(self.offline_directory)
        elif state.run_dir is not None:
            folder = RunFolder(state.run_dir).comet
        else:
            raise ValueError("CometLogger offline needs `offline_directory` or a run folder (state.run_dir)")
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder
        return folder

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        self._experiment.log_parameters(flatten(params))

    def log_artifact(self, path: Path) -> None:
        self._experiment.log_asset(str(path), file_name=path.name)

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        values = {key: value for key, value in metrics.items() if step > self._logged_through.get(key, -1)}
        if values:
            self._experiment.log_metrics(values, step=step, epoch=epoch)

    def log_image(self, name: str, path: Path, step: int) -> None:
        if step > self._logged_through.get(IMAGE + name, -1):
            self._experiment.log_image(str(path), name=name, step=step)

    def log_text(self, name: str, text: str) -> None:
        self._experiment.log_asset_data(text, name=f"{name}.txt", overwrite=True)

    def flush(self) -> None:
        """Offline, wait until Comet's writer thread has put every message into its data file."""
        streamer = getattr(self._experiment, "streamer", None)
        if self._folder is None or streamer is None:
            if self._experiment is not None:
                self._experiment.flush()
            return
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while not streamer.messages.empty() and time.monotonic() < deadline:
            time.sleep(0.005)
        lock = getattr(streamer, "__write_lock__", None)
        if lock is not None and lock.acquire(timeout=FLUSH_TIMEOUT_S):
            lock.release()  # the message taken from the queue last is written and flushed once the lock is free

    def finish(self, status: str) -> None:
        if self._experiment is None:
            return  # the fit ended before the experiment was opened
        experiment, self._experiment = self._experiment, None
        experiment.log_other("status", status)
        experiment.end()
        if self._folder is not None and self.experiment_key is not None:
            with contextlib.suppress(OSError):  # Comet removed its data folder; ours is empty unless it failed
                (self._folder / f"{self.experiment_key}{RUNNING}").rmdir()


def _archives(folder: Path, key: str) -> list[Path]:
    """The archives of experiment ``key`` in ``folder``, one per process that wrote to it."""
    return sorted(folder.glob(f"{key}-*.zip"))


def _logged_through(archives: list[Path]) -> dict[str, int]:
    """Metric name (``image:<name>`` for an image) -> the last step the archives hold."""
    last: dict[str, int] = {}
    for archive in archives:
        with zipfile.ZipFile(archive) as opened:
            lines = opened.read(DATA_FILE).decode("utf-8").splitlines()
        for line in filter(None, lines):
            message = json.loads(line)
            payload = message.get("payload", {})
            metric = payload.get("metric") if message.get("type") == "metric_msg" else None
            if metric and metric.get("step") is not None:
                last[metric["metricName"]] = max(last.get(metric["metricName"], -1), int(metric["step"]))
            image = payload.get("additional_params", {}) if payload.get("upload_type") == "visualization" else {}
            if image.get("figName") is not None and image.get("step") is not None:
                name = IMAGE + image["figName"]
                last[name] = max(last.get(name, -1), int(image["step"]))
    return last


def _salvage(folder: Path, key: str, workspace: str | None, project: str) -> None:
    """Zip the data a killed process left for experiment ``key`` into the archive its end would have written.

    The last line of the data file may be cut short by the kill: it is
    dropped. ``experiment.json`` is what Comet writes at an experiment's end.
    """
    for placeholder in folder.glob(f"{key}-*.zip"):  # Comet creates its archive empty at the start, fills it at the end
        if not _holds_data(placeholder):
            placeholder.unlink()
    running = folder / f"{key}{RUNNING}"
    for data in sorted(running.glob("*")) if running.is_dir() else []:
        messages = data / DATA_FILE
        if not data.is_dir() or not messages.is_file():
            shutil.rmtree(data, ignore_errors=True)
            continue
        text = messages.read_text(encoding="utf-8")
        lines = [line for line in text[: text.rfind("\n") + 1].splitlines() if _parses(line)]
        messages.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        times = [json.loads(line).get("payload", {}).get("local_timestamp") for line in lines]
        stopped = int(messages.stat().st_mtime * 1000)
        meta = {  # the fields Comet's own end writes
            "offline_id": key,
            "project_name": project,
            "start_time": min((stamp for stamp in times if isinstance(stamp, int)), default=stopped),
            "stop_time": stopped,
            "tags": [],
            "workspace": workspace,
            "resume_strategy": MODE,
            "customer_error_reported": False,  # the resumed run's archive says how the run ended
            "customer_error_message": None,
            "user_provided_experiment_key": True,
            "comet_start_sourced": True,
        }
        (data / "experiment.json").write_text(json.dumps(meta), encoding="utf-8")
        name = f"{key}-{uuid.uuid4().hex[:8]}.zip"
        partial = folder / f"{name}.partial"
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for file in sorted(data.iterdir()):
                archive.write(file, file.name)
        os.replace(partial, folder / name)
        shutil.rmtree(data)
        log.info("comet: the data of a process killed before its end is archived as %s", folder / name)


def _holds_data(archive: Path) -> bool:
    try:
        with zipfile.ZipFile(archive) as opened:
            return DATA_FILE in opened.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
