"""run.json: what ran, where, with what, and how it ended.

Written atomically (``atomic_write``) at the start, after every epoch
(progress summary, by the RecordSummary callback) and at the end, so a reader
never sees half a file and a crashed run is visibly not ``completed``. A
write that changes the status is durable (fsynced); the summary and heartbeat
updates between are not (atomic.py says why). ``read_record`` is the one
reader: every command, and the config loader (a run's project root), read
run.json through it.

A run that dies without a word (SIGKILL, a node lost) stays ``running`` on
disk. To tell it from a live one, a running fit refreshes ``heartbeat`` at
least every ``HEARTBEAT_SECONDS`` and records its ``host`` and ``pid``:
``crashed`` is a ``running`` record whose process is gone (same host) or
whose heartbeat is older than ``STALE_AFTER_SECONDS`` (another host).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import BadInput
from .atomic import atomic_write, wait_for_syncs
from .folder import RunFolder

STATUSES = ("running", "completed", "failed", "interrupted")
HEARTBEAT_SECONDS = 30
STALE_AFTER_SECONDS = 10 * HEARTBEAT_SECONDS


def hostname() -> str:
    """This machine's name, as a record's ``host`` holds it."""
    import socket  # here, not at the top: the config layer imports this module on every `expresso` start

    return socket.gethostname()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def git_state(folder: Path) -> dict[str, Any]:
    """The commit and dirty flag of the repository holding ``folder``, if any.

    ``--no-optional-locks``: a plain ``git status`` refreshes the index and
    takes ``.git/index.lock`` to write it, so a user's git command run at that
    moment would fail; reading the state must not touch the repository.
    """
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


class RecordError(BadInput, ValueError):
    """A run.json that cannot be read, or holds a field of the wrong kind: bad input (exit 2), never a traceback."""


# The fields expresso reads back, and the kinds they must have (None allowed for all).
FIELD_KINDS = {
    "name": str,
    "status": str,
    "project_root": str,
    "summary": dict,
    "resumes": list,
    "heartbeat": str,
    "host": str,
    "pid": int,
    "error": dict,  # a failed run's {"type": ..., "message": ...}
}


def read_record(path: Path) -> dict[str, Any]:
    """run.json as a dict, checked: ``RecordError`` naming the file and the field otherwise."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise RecordError(f"{path}: not a readable run record ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: not a run record (a JSON {type(data).__name__}, expected an object)")
    for key, kind in FIELD_KINDS.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise RecordError(f"{path}: field {key!r} holds {value!r}, expected a {kind.__name__}")
    return data


class RunRecord:
    """A run's run.json in memory (``data``), written whole at every ``update``; read from disk unless ``data`` is given."""

    def __init__(self, run_dir: Path, data: dict[str, Any] | None = None):
        self.path = RunFolder(run_dir).record
        self.data = data if data is not None else read_record(self.path)
        self._status_on_disk = self.data.get("status") if data is None else None

    @staticmethod
    def fields(
        run_dir: Path, *, name: str, seed: int, device: str, project_root: Path, versions: dict[str, str]
    ) -> dict[str, Any]:
        """The record of a run that starts now (``versions``: what it runs on, expresso.engine.environment's)."""
        import platform

        return {
            "name": name,
            "run_id": Path(run_dir).name,
            "status": "running",
            "command": " ".join(["expresso", *sys.argv[1:]]),
            "started_at": now(),
            "ended_at": None,
            "heartbeat": now(),
            "pid": os.getpid(),
            "git": git_state(Path(project_root)),
            "host": hostname(),
            "platform": platform.platform(),
            "versions": versions,
            "seed": seed,
            "device": device,
            "project_root": str(project_root),
            "summary": {},
            "resumes": [],
        }

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.write()

    def finish(self, status: str) -> None:
        assert status in STATUSES
        self.update(status=status, ended_at=now())

    def write(self) -> None:
        """Atomically; durable when the status changes (a start, a resume, an end), not for a summary or heartbeat."""
        status = self.data.get("status")
        durable = status != self._status_on_disk
        if durable:
            wait_for_syncs()  # a status (completed, interrupted) never reaches the disk before the checkpoints it stands on
        atomic_write(self.path, json.dumps(self.data, indent=2, default=str) + "\n", durable=durable)
        self._status_on_disk = status


def shown_status(record: dict[str, Any], timestamp: float | None = None) -> str:
    """The record's status, or ``crashed`` for a ``running`` one whose process is gone or whose heartbeat went stale."""
    status = record.get("status") or "?"
    if status != "running":
        return status
    pid = record.get("pid")
    if record.get("host") == hostname() and isinstance(pid, int) and 0 < pid < 2**31:  # 0 or -N: process groups
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "crashed"
        except PermissionError:  # alive, another user's
            pass
    try:
        beat = datetime.strptime(record.get("heartbeat") or "", "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return status
    return "crashed" if (timestamp or time.time()) - beat > STALE_AFTER_SECONDS else status
