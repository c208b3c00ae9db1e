"""The wandb logger: config, metrics, config.yaml and the ending of a run as a Weights & Biases run, offline by default.

Without credentials (no ``api_key`` option and no ``WANDB_API_KEY`` in the
environment), or with ``offline: true`` (what ``--offline`` sets), the run
is recorded in offline mode under the run folder's ``wandb/``
(``offline-run-<time>-<id>/run-<id>.wandb``), which ``wandb sync
runs/<name>/<run>/wandb/offline-run-*`` uploads later. With credentials
and not ``offline: true`` it is logged online to ``entity`` / ``project``;
``offline: false`` goes online with wandb's own credentials too (``wandb
login``'s ~/.netrc), which are not consulted for the default choice.

The config is the flattened resolved config (``optimizer.lr``); each
metrics.csv row is one history row at its step (``step=``, the optimizer
steps), with ``epoch`` as a value of the row; a callback's image
(``ImageGrid``'s ``images/x_fake``) is a ``wandb.Image`` in the row of its
step (the epoch's metrics); config.yaml and a callback's text (the model
summary, ``<name>.txt``) are run files;
how the fit ended is the summary value ``status`` (``completed``,
``failed``, ``interrupted``) and the exit code W&B shows (0, 1, 130).
wandb's console capture, system metrics, git and code saving are off:
run.json and log.txt hold those, and wandb is silent on the console.

Resume continues the same run: its id travels in the checkpoint and the
run starts with ``resume="allow"``. Offline, each process writes its own
``offline-run-*-<id>`` folder; ``wandb sync`` uploads them in order of
start into the one run. The steps that earlier folders hold are not logged
again (W&B would drop a step below the run's last; a deterministic resume
computes them to the same values). wandb's service writes the record file
in 32 KiB blocks and a SIGKILL loses the unwritten tail (often all of a
short run): so the logger keeps the rows it sent in its checkpoint state,
as History does for metrics.csv (~50 bytes a step row), and a resumed run
first logs those that the earlier folders lack, then continues.

Nothing outside the run folder: wandb's cache and service logs
(``WANDB_CACHE_DIR``) go to ``wandb/cache/``, the temporary folders it
creates as it is imported and starts to ``wandb/tmp/`` (removed at exit; a
SIGKILL leaves them); only its service's socket is in the system's
temporary folder while it runs. Offline, wandb's error reporting is off:
no network at all. The service process is stopped when the fit ends
(``wandb.teardown``), and exits by itself when the training process is
killed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config.loggers import missing_extra
from ..engine.state import State
from ..runs.folder import RunFolder
from .base import Logger, flatten
from .isolation import environment, own_random_state, temporary_files_in

EXIT_CODES = {"completed": 0, "failed": 1, "interrupted": 130}
CACHE = "cache"  # wandb/cache/: wandb's cache and its service's logs, kept in the run folder
TEMPORARY = "tmp"  # wandb/tmp/: the temporary folders wandb creates as it is imported and starts
# the record file's framing (LevelDB's log format, as wandb writes it): a 7-byte file header, 32 KiB blocks,
# each record a 7-byte header (crc32, length, kind) and a payload that is a wandb protobuf Record or a piece of one
FILE_HEADER = 7
BLOCK = 32768
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
MEDIA_TYPE = "/_type"  # the history item naming what a wandb.Image (path, size...) under that key is


class _Picture(str):
    """An image's path among a row's values: a ``wandb.Image`` when sent, its path (plain text) in the checkpoint."""

    @property
    def path(self) -> str:
        return str(self)


class WandbLogger(Logger):
    """Logs the run to Weights & Biases: the flattened config, metrics with their epoch, config.yaml, and how it ended.

    Args:
        project: the W&B project (None: the config's ``name``).
        entity: the W&B user or team (None: the key's default).
        api_key: a W&B API key (None: ``WANDB_API_KEY`` from the environment, else offline).
        offline: True: offline even with credentials (``--offline`` sets it); False: online; None: online exactly
            when there are credentials.
        dir: where wandb's ``wandb/`` folder goes (None: the run folder).
    """

    def __init__(
        self,
        project: str | None = None,
        entity: str | None = None,
        api_key: str | None = None,
        offline: bool | None = None,
        dir: str | None = None,  # noqa: A002 (wandb.init's own name for it)
    ) -> None:
        self.project = project
        self.entity = entity
        self.api_key = api_key
        self.offline = offline
        self.dir = dir
        self.run_id: str | None = None
        self._run: Any = None
        self._waiting: dict[int, dict[str, Any]] = {}  # step -> the values (numbers, Pictures) for it, logged at flush
        self._logged_through: dict[str, int] = {}  # metric -> the last step earlier offline folders hold
        self._sent: list[dict[str, Any]] = []  # {"step", "values"} of each history row sent: the checkpoint keeps them

    def __repr__(self) -> str:  # the key is a credential: never in a log line
        return f"WandbLogger(project={self.project!r}, entity={self.entity!r}, offline={self.offline!r})"

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "rows": [dict(row) for row in self._sent]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")
        self._sent = list(state.get("rows", []))

    def on_fit_start(self, state: State) -> None:
        message = missing_extra("wandb", "wandb", "the wandb logger")
        if message:
            raise ImportError(message)
        key = self.api_key or os.environ.get("WANDB_API_KEY") or None
        offline = self.offline if self.offline is not None else key is None
        if self.dir is not None:
            root = Path(self.dir)
        elif state.run_dir is not None:
            root = Path(state.run_dir)
        else:
            raise ValueError("WandbLogger needs `dir` or a run folder (state.run_dir)")
        folder = RunFolder(root).wandb
        folder.mkdir(parents=True, exist_ok=True)
        variables = {"WANDB_CACHE_DIR": str(folder / CACHE), "WANDB_SILENT": "true"}
        if offline:
            variables["WANDB_ERROR_REPORTING"] = "false"  # read when its service starts: no network at all
        elif self.api_key:
            variables["WANDB_API_KEY"] = self.api_key
        self.run_id = self.run_id or uuid.uuid4().hex[:16]  # W&B's ids: letters and digits
        # wandb's import creates temporary folders, removed at exit: in the run folder, where a kill leaves them
        with environment(variables), own_random_state(), temporary_files_in(folder / TEMPORARY):
            import wandb

            self._logged_through = _logged_through(folder, self.run_id) if offline else {}
            self._run = wandb.init(
                mode="offline" if offline else "online",
                dir=str(root),
                id=self.run_id,
                resume="allow",
                project=self.project or str((state.config or {}).get("name") or "expresso"),
                entity=self.entity,
                name=root.name if state.run_dir is not None else None,
                settings=wandb.Settings(
                    silent=True,
                    console="off",
                    x_disable_stats=True,
                    x_disable_meta=True,
                    disable_git=True,
                    save_code=False,
                    disable_job_creation=True,
                ),
            )
        # rows the checkpoint counts that no earlier record file holds (lost with a killed process's unwritten tail)
        self._waiting = {}
        if offline:
            for row in self._sent:
                pictures = {key: _Picture(path) for key, path in row.get("images", {}).items() if Path(path).is_file()}
                self._add({**row["values"], **pictures}, row["step"])
        self._send_waiting(keep=False)
        super().on_fit_start(state)

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        # a resumed run records the settings it continues with
        self._run.config.update(flatten(params), allow_val_change=True)

    def log_artifact(self, path: Path) -> None:
        # a file inside the run's files/ folder is saved as it is (one outside would be linked, with a console warning)
        target = Path(self._run.dir) / path.name
        shutil.copyfile(path, target)
        self._run.save(str(target), base_path=self._run.dir, policy="now")

    def log_text(self, name: str, text: str) -> None:
        target = Path(self._run.dir) / f"{name}.txt"
        target.write_text(text, encoding="utf-8")
        self._run.save(str(target), base_path=self._run.dir, policy="now")

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        self._add({**metrics, "epoch": epoch}, step)

    def log_image(self, name: str, path: Path, step: int) -> None:
        self._add({name: _Picture(str(path))}, step)  # made a wandb.Image as it is sent: the checkpoint keeps the path

    def flush(self) -> None:
        self._send_waiting(keep=True)

    def _add(self, values: dict[str, Any], step: int) -> None:
        """Queue a row's values the record files do not hold; a step's rows (its training row and the epoch's) are one."""
        new = {
            key: value for key, value in values.items() if key == "epoch" or step > self._logged_through.get(key, -1)
        }
        if set(new) - {"epoch"}:
            self._waiting.setdefault(step, {}).update(new)

    def _send_waiting(self, keep: bool) -> None:
        """Log the queued rows, each committed: W&B holds a step's row until it is told the step is complete."""
        waiting, self._waiting = self._waiting, {}
        import wandb

        for step in sorted(waiting):
            row = {
                key: wandb.Image(value.path) if isinstance(value, _Picture) else value
                for key, value in waiting[step].items()
            }
            self._run.log(row, step=step, commit=True)
            if keep:  # plain data: a checkpoint is read with weights_only
                values = {key: value for key, value in waiting[step].items() if not isinstance(value, _Picture)}
                images = {key: str(value) for key, value in waiting[step].items() if isinstance(value, _Picture)}
                self._sent.append({"step": step, "values": values, **({"images": images} if images else {})})

    def finish(self, status: str) -> None:
        if self._run is None:
            return  # the fit ended before the run was started
        run, self._run = self._run, None
        import wandb

        run.summary["status"] = status
        run.finish(exit_code=EXIT_CODES[status])
        wandb.teardown()  # stops wandb's service process: nothing of the run outlives the fit


def _logged_through(folder: Path, run_id: str) -> dict[str, int]:
    """Metric name -> the last step that the record files of run ``run_id`` in ``folder`` hold."""
    from wandb.proto import wandb_internal_pb2

    last: dict[str, int] = {}
    for path in sorted(folder.glob(f"*-{run_id}/run-{run_id}.wandb")):
        for payload in records(path):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            if record.WhichOneof("record_type") != "history":
                continue
            step = record.history.step.num
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                key = key.removesuffix(MEDIA_TYPE)  # an image is items under its name: images/x_fake/_type is its own
                if not key.startswith("_") and key != "epoch":
                    last[key] = max(last.get(key, -1), step)
    return last


def records(path: Path) -> Iterator[bytes]:
    """The payloads of a wandb record file (``run-<id>.wandb``), in order; a record cut short by a kill ends it."""
    data = path.read_bytes()
    position, pieces = FILE_HEADER, []
    while position + RECORD_HEADER <= len(data):
        room = BLOCK - position % BLOCK
        if room < RECORD_HEADER:  # a block's tail too short for a header is padding
            position += room
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        payload = data[position + RECORD_HEADER : position + RECORD_HEADER + length]
        if kind not in (FULL, FIRST, MIDDLE, LAST) or len(payload) < length:
            return
        position += RECORD_HEADER + length
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            pieces = [payload]
        else:
            pieces.append(payload)
            if kind == LAST:
                yield b"".join(pieces)
