"""The one atomic writer: every file of a run folder is replaced whole, or not at all.

A write goes to a temporary file beside the target (``.<name>.<random>.tmp``,
same folder, so same filesystem), then ``os.replace`` renames it over the
target: a reader, or a process killed at any moment, sees the old file or the
new one, never half of one. A failure (a full disk, a file too large, an
interrupt) removes the temporary file and re-raises: the old file is intact.
The file gets the permissions any new file gets (0666 less the umask).

``durable`` decides whether the new version also survives an
operating-system crash or a power loss: the file is fsynced before the
rename (after a crash it is the old version or the new one, whole) and,
unless ``sync_folder=False``, the folder after it (it is the new one).
``sync_folder=False`` is for a file whose rename a later fsync of the same
folder makes durable soon enough: each fsync costs milliseconds, a visible
share of a small model's epoch. Without ``durable`` nothing is fsynced: the
rename is still atomic for every other process, but after an OS crash the
file may hold an older version.

``later=True`` (with ``durable``) hands the fsyncs to one background thread
instead of waiting for them: a checkpoint's file and folder fsyncs, 5-10 ms
each on a busy disk, leave the training thread's critical path. A process killed at any moment loses
nothing by it (the operating system holds the bytes; only its own crash
loses them). ``wait_for_syncs()`` returns once every fsync handed so far is
done, raising the first that failed: the next checkpoint waits before it
replaces anything (so ``previous.ckpt`` is always durable and an OS crash
loses at most the newest checkpoint, detected and skipped on resume), a
durable status change of run.json waits (a run never says ``completed``
before its checkpoints are durable), and so does the interpreter's exit.
Each writer states its choice (docs/reliability.md lists them):

=====================  ==============  ======================================================
file                   durable         why
=====================  ==============  ======================================================
``*.ckpt``             yes, later      the resume point: losing it loses the work since it
``config.yaml``        yes             written once per start or resume; resume needs it
``export/*``           yes             written once, handed to others
``run.json``           yes, when its   a few times per run (start, resume, end); the
                       status changes  per-epoch summary and the heartbeat are not fsynced:
                                       an older summary misleads no resume
``manifest.json``      file only       every version on disk verifies the checkpoints then on
                                       disk; the checkpoints' folder fsyncs make it current
``manifest.copy.json`` no              the same entries, for a manifest damaged later; after an
                                       OS crash it may be older or not whole (said, rewritten)
``best.ckpt``, top-k   file only       a hard link (no bytes; a copy where links are not
                                       supported is fsynced); the next checkpoint's folder
                                       fsync makes the name durable
``previous.ckpt``      no              a link made just before the checkpoint's rename, whose
                                       folder fsync covers it
``metrics.csv``        no              appended every epoch, rewritten when a column appears:
                                       after an OS crash its last rows may be missing, never
                                       doubled (the checkpoint counts the rows it covers)
``eval-*.json``        no              ``expresso eval`` recomputes it
``curves.png``         no              drawn again from metrics.csv at every fit's end
=====================  ==============  ======================================================

One file is not written here: ``writer.lock`` (lock.py) is locked by inode,
so its holder writes its line into the locked file itself; a replaced file
would be a second lock.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from .fault_points import reached

Data = bytes | bytearray | memoryview | str


def atomic_write(
    path: str | os.PathLike, data: Data, *, durable: bool, sync_folder: bool = True, later: bool = False
) -> None:
    """Replace ``path`` with ``data`` (a ``str`` is written as UTF-8) atomically; fsynced when ``durable``."""
    with atomic_file(path, durable=durable, sync_folder=sync_folder, later=later) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike,
    *,
    durable: bool,
    sync_folder: bool = True,
    before_replace: Callable[[], None] | None = None,
    later: bool = False,
) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new contents into (streamed: nothing is held in memory).

    When the block ends the file is flushed (and fsynced when ``durable``;
    the folder too after the rename, unless ``sync_folder`` is false; both
    in the background with ``later``),
    ``before_replace()`` runs (the checkpoint manifest records the bytes
    there), and the file is renamed over ``path``. Any exception in the
    block or in ``before_replace`` removes the temporary file and propagates.
    The folder is created if missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _temporary(path)
    kept: int | None = None  # with ``later``: a descriptor of the new file, fsynced (and closed) in the background
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            reached(f"{path.name}: written")
            handle.flush()
            if durable and later:
                kept = os.dup(handle.fileno())
            elif durable:
                os.fsync(handle.fileno())
                reached(f"{path.name}: fsynced")
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
        reached(f"{path.name}: renamed")
    except BaseException:
        if kept is not None:
            os.close(kept)
        tmp.unlink(missing_ok=True)
        raise
    folder = path.parent if durable and sync_folder else None
    if kept is not None:
        _SYNCS.add(kept, folder, path.name)
    elif folder is not None:
        fsync_folder(folder)
        reached(f"{path.name}: folder fsynced")


def atomic_copy(
    source: str | os.PathLike, target: str | os.PathLike, *, durable: bool, sync_folder: bool = True
) -> None:
    """Make ``target`` a copy of ``source``, atomically: a hard link where the filesystem allows, else a byte copy.

    A link costs no bytes and stays right as long as ``source`` is only ever
    *replaced* (a new file under its name, as every writer here does), never
    written in place: ``target`` keeps the old contents. ``durable`` fsyncs a
    byte copy, and the folder unless ``sync_folder`` is false.
    """
    source, target = Path(source), Path(target)
    if target.exists() and os.path.samefile(source, target):
        # Already one file (a kill between previous.ckpt's link and last.ckpt's rename leaves them so), and rename()
        # of two links to one file does nothing, which would leave the temporary link behind.
        return
    tmp = _temporary_name(target)
    try:
        try:
            os.link(source, tmp)
        except OSError:  # no hard links here (some network and FAT filesystems): copy
            import shutil  # only here: `import expresso` (the config layer reads run.json) stays light

            shutil.copyfile(source, tmp)
            if durable:
                with open(tmp, "rb+") as handle:
                    os.fsync(handle.fileno())
        reached(f"{target.name}: linked")
        os.replace(tmp, target)
        reached(f"{target.name}: renamed")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable and sync_folder:
        fsync_folder(target.parent)
        reached(f"{target.name}: folder fsynced")


def wait_for_syncs() -> None:
    """Return once every fsync handed to the background (``later=True``) is done; raise the first that failed."""
    _SYNCS.wait()


class _Syncs:
    """The fsyncs of ``later`` writes, done in order by one background thread (started at the first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def add(self, fd: int, folder: Path | None, name: str) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="expresso-fsync")
            self._pending.append(self._pool.submit(_sync, fd, folder, name))

    def wait(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        failed = [error for future in pending if (error := future.exception()) is not None]
        if failed:
            raise failed[0]


def _sync(fd: int, folder: Path | None, name: str) -> None:
    """The background half of a ``later`` write: the file's bytes, then its name (the folder), made durable."""
    try:
        os.fsync(fd)
        reached(f"{name}: fsynced")
    finally:
        os.close(fd)
    if folder is not None:
        fsync_folder(folder)
        reached(f"{name}: folder fsynced")


_SYNCS = _Syncs()
atexit.register(wait_for_syncs)  # threading's exit has run the queued fsyncs by then: this raises one that failed


def fsync_folder(folder: Path) -> None:
    """Make the folder's entries (a rename, a new link) durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_RANDOM_BYTES = 4
_TEMPORARY = re.compile(rf"\..+\.[0-9a-f]{{{2 * _RANDOM_BYTES}}}\.tmp")  # what _temporary_name makes


def _temporary_name(path: Path) -> Path:
    """A name beside ``path`` that no other write uses: hidden, random, ending in ``.tmp``."""
    return path.with_name(f".{path.name}.{os.urandom(_RANDOM_BYTES).hex()}.tmp")


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of writes that never finished in ``folder`` (a process killed inside one); the paths removed.

    A failed write removes its own temporary file; only a kill (SIGKILL, a
    lost node) leaves one behind, named as ``_temporary_name`` names them.
    A live writer's temporary file has the same form: call this only on a
    folder no other process is writing (a run being resumed), never on one
    a run is training into.
    """
    removed = []
    try:
        entries = sorted(Path(folder).iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        if _TEMPORARY.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _temporary(path: Path) -> tuple[Path, int]:
    """A new, empty temporary file beside ``path`` and its descriptor (mode 0666 less the umask, as any new file)."""
    while True:
        tmp = _temporary_name(path)
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # another writer drew the same name: draw again
            continue
