"""The clearml logger: hyperparameters, scalars, config.yaml and the ending of a run as a ClearML task.

Offline by default: without ClearML credentials (``CLEARML_API_ACCESS_KEY``,
``CLEARML_AUTH_TOKEN`` or ``api.credentials`` in clearml.conf) the task is an
offline session in the run folder, ``<run>/clearml/offline/<task id>/``
(``task.json``, ``metrics.jsonl``, ``log.jsonl``, ``data/``), zipped beside
it when the fit ends; ``Task.import_offline_session("<zip>")`` uploads it
later. ``offline: false`` (or credentials) reports to the server instead.
The project is the config's ``name``, the task is named after the run folder.

What it sends: the flattened resolved config as the task's hyperparameters
(section ``General``), every metrics.csv value as a scalar at its step with
iteration = step (``val/acc`` is title ``val``, series ``acc``; a name
without ``/`` is both), config.yaml as a configuration object and an
artifact, a callback's image (``ImageGrid``'s ``images/x_fake``) as a debug
sample at its step (title ``images``, series ``x_fake``; each its own copy,
numbered on after those a continued session keeps), a callback's text (the
model summary) as a configuration object of its name, and how the fit
ended: ``completed``, ``failed`` or ``stopped`` (interrupted) on a server. An offline session keeps no status (ClearML
marks every imported session completed), so it carries the ending as the
tag ``status:<completed|failed|interrupted>`` (``status:running`` while
the fit runs, and after a SIGKILL).

Resume continues the same task (its id travels in the checkpoint): the
offline session takes up its folder again, after dropping the events the
interrupted process wrote past the checkpoint's step (the resumed run sends
them again), so each step is there once. A server keeps what it was sent;
re-sent steps are not dropped there (not tested without a server).

Kept quiet and contained: ClearML's console lines are not printed, its
framework, argparse, stream and resource-monitor hooks are off, reports go
through a thread rather than a forked copy of the training process (whose
close waits about 10 s), the signal and exception hooks ``Task.init``
installs are removed again (the fit's own SIGTERM handling stays in charge),
and its cache and last-task file live in ``<run>/clearml/``. What remains
process-wide is ClearML's own: its ``os.register_at_fork`` hook in forked
children (DataLoader workers) and its wrapper of ``sys.exit`` while the task
is open.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config.loggers import missing_extra
from ..engine.state import State
from ..runs.atomic import atomic_write
from ..runs.folder import RunFolder
from .base import Logger, flatten

log = logging.getLogger("expresso")

STATUS_TAG = "status:"
# The signals Task.init hooks (clearml/utilities/process/exit_hooks.py).
HOOKED_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGSEGV", "SIGABRT", "SIGILL", "SIGFPE", "SIGQUIT")
    if hasattr(signal, name)
)


class ClearMLLogger(Logger):
    """Logs the run to a ClearML task: hyperparameters, scalars, config.yaml, and how it ended; offline by default.

    Args:
        project_name: the ClearML project (None: the config's ``name``).
        task_name: the task (None: the run folder's name).
        offline: an offline session in the run folder (None: offline unless ClearML credentials are configured).
    """

    def __init__(self, project_name: str | None = None, task_name: str | None = None, offline: bool | None = None):
        self.project_name = project_name
        self.task_name = task_name
        self.offline = offline
        self.task_id: str | None = None
        self._task: Any = None
        self._offline = True

    def state_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.task_id = state.get("task_id")

    def on_fit_start(self, state: State) -> None:
        message = missing_extra("clearml", "clearml", "the clearml logger")
        if message:
            raise ImportError(message)
        from clearml import Task

        self._offline = self.offline if self.offline is not None else not _credentials_configured()
        run_dir = Path(state.run_dir) if state.run_dir is not None else None
        if run_dir is None and self._offline:
            raise ValueError("ClearMLLogger needs a run folder (state.run_dir) for its offline session")
        cache = RunFolder(run_dir).clearml.resolve() if run_dir is not None else None
        project = self.project_name or str((state.config or {}).get("name") or "expresso")
        name = self.task_name or (run_dir.name if run_dir is not None else "expresso")
        # a report thread, not a forked copy of the training process: forking torch's threads is unsafe, and
        # the forked reporter's close waits about 10 s (clearml.conf's sdk.development.report_use_subprocess)
        Task._report_subprocess_enabled = False
        if Task.is_offline() != self._offline:  # going online connects ClearML's sessions: only when it changes
            Task.set_offline(self._offline)
        with _contained(cache):
            continued = self._continued(state.step)
            self._task = Task.init(
                project_name=project,
                task_name=name,
                reuse_last_task_id=continued or False,
                continue_last_task=0 if continued else False,  # 0: iterations as sent, no offset
                auto_connect_arg_parser=False,
                auto_connect_frameworks=False,
                auto_resource_monitoring=False,
                auto_connect_streams=False,
            )
            if self._offline:
                self._task.get_offline_mode_folder()  # fixed now, while the cache is the run folder's
        self.task_id = self._task.id
        if self._offline:
            self._tag("running")
        super().on_fit_start(state)

    def _continued(self, step: int) -> str | None:
        """The task the checkpoint names, made ready to continue (None: a new task is created).

        An offline session loses the events past ``step``, which the interrupted process sent after its
        checkpoint and the resumed run sends again.
        """
        if self.task_id is None:
            return None
        if not self._offline:
            return self.task_id  # ClearML creates a new task when the server does not hold this one
        from clearml.config import get_offline_dir

        session = Path(get_offline_dir(task_id=self.task_id))
        if not (session / "task.json").is_file():
            log.warning(
                "expresso: warning: ClearML offline session %s (from the checkpoint) is not in %s: the resumed run "
                "is logged as a new task",
                self.task_id,
                session.parent,
            )
            return None
        _drop_events_after(session / "metrics.jsonl", step)
        _continue_image_numbers(session / "metrics.jsonl")
        return self.task_id

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        self._task.connect({key: _hyperparameter(value) for key, value in flatten(params).items()})

    def log_artifact(self, path: Path) -> None:
        if path.suffix in (".yaml", ".yml", ".json"):  # shown in the task's CONFIGURATION tab
            self._task.connect_configuration(path, name=path.name)
        self._task.upload_artifact(path.name, artifact_object=path, wait_on_upload=True)

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        report = self._task.get_logger().report_scalar
        for key, value in metrics.items():
            title, _, series = key.partition("/")
            report(title=title, series=series or title, value=value, iteration=step)

    def log_image(self, name: str, path: Path, step: int) -> None:
        title, _, series = name.partition("/")
        self._task.get_logger().report_image(
            title=title,
            series=series or title,
            iteration=step,
            local_path=str(path),
            max_image_history=-1,  # each its own copy (ClearML's default reuses 5 files a series)
            delete_after_upload=False,
        )

    def log_text(self, name: str, text: str) -> None:
        self._task.set_configuration_object(name, config_text=text)

    def flush(self) -> None:
        if self._task is not None:
            self._task.flush(wait_for_uploads=True)

    def finish(self, status: str) -> None:
        if self._task is None:
            return  # the fit ended before the task was opened
        task, self._task = self._task, None
        if self._offline:
            self._tag(status, task)
        with contextlib.redirect_stdout(io.StringIO()):
            task.close()  # a server marks the task completed here
        if not self._offline and status == "failed":
            task.mark_failed(status_reason="the fit failed", force=True)
        elif not self._offline and status == "interrupted":
            task.stopped(force=True, status_reason="the fit was interrupted")

    def _tag(self, status: str, task: Any = None) -> None:
        task = task or self._task
        old = [tag for tag in task.get_tags() or [] if tag.startswith(STATUS_TAG)]
        if old:
            task.remove_tags(old)
        task.add_tags([f"{STATUS_TAG}{status}"])


def _credentials_configured() -> bool:
    """Whether ClearML would find credentials for a server: environment variables or clearml.conf."""
    from clearml.backend_api.session.defs import ENV_ACCESS_KEY, ENV_AUTH_TOKEN
    from clearml.config import config_obj

    return bool(ENV_AUTH_TOKEN.get() or ENV_ACCESS_KEY.get() or config_obj.get("api.credentials.access_key", None))


@contextlib.contextmanager
def _contained(cache: Path | None) -> Iterator[None]:
    """ClearML's cache and last-task file in ``cache``; its console lines, signal and exception hooks undone after."""
    from clearml.config.cache import SessionCache

    handlers = {signum: signal.getsignal(signum) for signum in HOOKED_SIGNALS}
    excepthook, exit_ = sys.excepthook, sys.exit
    environment = os.environ.get("CLEARML_CACHE_DIR")
    session_cache = SessionCache.SESSION_CACHE_FOLDER
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["CLEARML_CACHE_DIR"] = str(cache)
        SessionCache.SESSION_CACHE_FOLDER = str(cache)  # else ~/.clearml/.session.json
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if environment is None:
            os.environ.pop("CLEARML_CACHE_DIR", None)
        else:
            os.environ["CLEARML_CACHE_DIR"] = environment
        SessionCache.SESSION_CACHE_FOLDER = session_cache
        sys.excepthook, sys.exit = excepthook, exit_
        for signum, handler in handlers.items():
            with contextlib.suppress(ValueError, TypeError):  # not the main thread; a handler not set from Python
                signal.signal(signum, handler)


def _drop_events_after(path: Path, step: int) -> None:
    """Rewrite an offline session's metrics.jsonl (one JSON list of events a line) without the events past ``step``."""
    if not path.is_file():
        return
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            events = [event for event in json.loads(line) if int(event.get("iter") or 0) <= step]
            if events:
                lines.append(json.dumps(events))
    atomic_write(path, "".join(f"{line}\n" for line in lines), durable=False)


def _continue_image_numbers(path: Path) -> None:
    """Number the images this process reports after those an offline session keeps, so none of their copies is replaced.

    ClearML names an image's copy ``<title>_<series>_<n>`` with ``n`` counted
    per process from 0 (in ``UploadEvent._metric_counters``, which has no
    public setter): a resumed run would write over the first ones.
    """
    from clearml.backend_interface.metrics.events import UploadEvent

    last: dict[str, int] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    for line in filter(str.strip, lines):
        for event in json.loads(line):
            if event.get("type") == "training_debug_image" and event.get("key"):
                counter = f"{event.get('metric')}_{event.get('variant')}"
                number = Path(event["key"]).stem.rpartition("_")[2]
                if number.isdigit():
                    last[counter] = max(last.get(counter, -1), int(number))
    counters: dict[str, Any] = UploadEvent._metric_counters  # the last number given, per "<title>_<series>"
    for counter, kept in last.items():
        counters[counter] = max(counters.get(counter, -1), kept)


def _hyperparameter(value: Any) -> Any:
    """A value ClearML keeps as it is (text, numbers, booleans, None); others as their text."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)
