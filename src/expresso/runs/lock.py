"""One writer per run folder: the lock ``expresso train`` and ``expresso resume`` hold while they write it.

Two processes training into one folder interleave their rows in
metrics.csv and overwrite each other's run.json and checkpoints. So a
writer takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` on the folder's lock file
(``RunFolder.lock``) before it writes anything there and keeps it until the
process ends; a second writer is refused with one line naming the folder and
the holder's pid, host and start time (``RunFolderError``: exit 2), and
writes nothing. The kernel releases the lock when the holder's process ends,
however it ends: a SIGKILL or an out-of-memory kill never leaves a stale lock
to clean up. Readers (``runs``, ``eval``, ``predict``, ``export``) never
take it: every file is replaced whole (atomic.py), so they need no lock.

The lock is on the file's inode, so the lock file is the one file of the
folder that is *not* written through the atomic writer: a replaced file would
be a new inode, which the next process could lock while the holder still
holds the old one. The holder writes its pid, host and start time into the
locked file itself (truncated first); the content is read only by a refused
writer, and a holder that died leaves content nobody believes, because the
lock, not the content, decides: a refused writer that reads a dead process's
line (the new holder has locked but not yet written its own) waits for the
holder's. A process that locks a file which was
unlinked or replaced meanwhile (a failed start removing its empty folder, a
``--force`` moving the folder aside) notices that the path now names another
file and tries again.

Forked children (data-loader workers) would share the lock (flock locks
belong to the open file description) and keep it after the holder died, so
a fork closes the child's copy of every held lock's descriptor.

flock works on local filesystems and, on Linux, over NFS (emulated with
byte-range locks). Where ``fcntl`` does not exist (Windows) there is no lock:
``hold`` creates nothing and refuses nobody.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .folder import RunFolder, RunFolderError

try:
    import fcntl
except ImportError:  # Windows: no flock; a run folder has no owner there
    fcntl = None  # type: ignore[assignment]

ATTEMPTS = 5  # a lock file replaced under us this many times in a row: someone else is busy there; refuse
READ_TRIES = 20  # a refused writer waits up to READ_TRIES * READ_PAUSE for the holder to write its line
READ_PAUSE = 0.05

_held: dict[str, tuple[int, int]] = {}  # the lock file's real path -> (descriptor, how many holds in this process)


class RunFolderBusy(RunFolderError):
    """Another process writes this run folder (it holds the lock): exit 2, naming the holder."""


@contextlib.contextmanager
def hold(folder: RunFolder, *, create: bool = False) -> Iterator[None]:
    """Hold ``folder``'s writer lock for the block (re-entrant within a process); ``RunFolderBusy`` if another holds it.

    ``create``: make the folder (and its parents) first if it is missing;
    otherwise a missing folder is a ``RunFolderError``. An ``OSError`` on the
    way (a read-only runs root) is a ``RunFolderError`` naming the lock file.
    """
    if fcntl is None:
        yield
        return
    key = os.path.abspath(folder.lock)
    if key in _held:
        fd, count = _held[key]
        _held[key] = (fd, count + 1)
    else:
        _held[key] = (_acquire(folder, create), 1)
    try:
        yield
    finally:
        fd, count = _held.pop(key, (-1, 0))
        if count > 1:
            _held[key] = (fd, count - 1)
        elif fd >= 0:
            os.close(fd)  # releases the lock (the kernel would at exit anyway)


def _acquire(folder: RunFolder, create: bool) -> int:
    """A descriptor of the folder's lock file holding its exclusive lock, with this process's line written into it."""
    assert fcntl is not None
    path = folder.lock
    for _ in range(ATTEMPTS):
        try:
            if create:  # inside the loop: a failed start may remove the folder between two attempts
                folder.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise RunFolderError(f"{path}: cannot open the run folder's lock ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunFolderError(f"{path}: cannot lock the run folder ({exc.strerror or exc})") from None
            raise RunFolderBusy(f"{path.parent}: {_holder(path)}; wait for it to end") from None
        if not _names(path, fd):  # unlinked or replaced between our open and our lock: lock what the path names now
            os.close(fd)
            continue
        since = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        line = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since})
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{line}\n".encode(), 0)
        return fd
    raise RunFolderBusy(f"{path.parent}: another process keeps replacing its lock file; try again")


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open at ``fd``."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def _holder(path: Path) -> str:
    """``another process writes this run folder (pid N on host H since T)``, from the holder's line in the lock file.

    The holder writes its line just after it locks, so a refused writer may
    read the file before it: empty, or still holding the line of a holder
    that died (a killed run being resumed). Either is waited out, a moment at
    most: a line naming a process of this host that no longer exists is not
    the holder's.
    """
    for _ in range(READ_TRIES):
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
            pid, host, since = found["pid"], found["host"], found["since"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        else:
            if host != socket.gethostname() or _alive(pid):
                return f"another process writes this run folder (pid {pid} on host {host} since {since})"
        time.sleep(READ_PAUSE)
    return "another process writes this run folder (its pid is not recorded yet)"


def _alive(pid: object) -> bool:
    """Whether a process with this pid exists on this host (one of another user's counts)."""
    if type(pid) is not int or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _close_in_child() -> None:
    """After a fork: the child's copies of the held descriptors go, so a dead holder's workers do not keep its lock."""
    for fd, _ in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def unused(folder: RunFolder) -> bool:
    """Whether ``folder`` holds nothing but (at most) its lock file: no run was started in it."""
    try:
        return {entry.name for entry in folder.path.iterdir()} <= {RunFolder.LOCK}
    except FileNotFoundError:
        return True


def remove_if_unused(folder: RunFolder) -> None:
    """Remove ``folder`` (its lock held) if no run was started in it: a start that failed leaves no empty folder."""
    try:
        if unused(folder):
            folder.lock.unlink(missing_ok=True)
            folder.path.rmdir()
    except OSError:  # gone already, or unreadable: leave it
        pass
