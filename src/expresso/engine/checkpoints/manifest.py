"""checkpoints/manifest.json and its copy: the size, sha256 and loop position of every checkpoint written, so a damaged file is caught.

A checkpoint that lost bytes (a truncated copy, a bad disk block, a flipped
bit) may still unpickle into wrong weights; comparing its size and sha256
with what the writer recorded catches it before anything is loaded.

Why a list of recent entries beside the names: the manifest and the
checkpoint are two files, and no rename moves both at once. Each write
records its entry in ``recent`` before the checkpoint is renamed into place,
and the names (``last.ckpt``, ``previous.ckpt``, ``best.ckpt``...) after, so
at every moment each file on disk matches an entry: a file is valid when its
size and hash equal any entry of the manifest.

Why two records, ``manifest.json`` and ``manifest.copy.json`` (the same
data): one damaged file must not turn verification off. Every change is
written to both, the manifest first, each atomically, and both before the
checkpoint rename that needs the change's entry. So the argument above
holds for each record alone: a kill between any two writes (between the two
records included) leaves each one, in its old version or its new one, with
an entry for every checkpoint then on disk. Reading merges what both hold
that is well-formed (the manifest's names when it is sound: after a kill
between the two it is the newer): a file is valid when it matches any entry
of either, and a name either records is verified. A record that is damaged
(not JSON, malformed entries), unreadable, or missing beside the other is
said in one warning line naming it; verification goes on with the other,
and the next write (or ``resume_point``) rewrites both from it.

Only the manifest is fsynced (fsyncing the copy too made a small model's
checkpoint 40% slower, ~55 ms instead of ~39 on the test machine's disk;
unsynced, it costs nothing measurable): after an operating-system crash the
manifest verifies every checkpoint then on disk, as above, while the copy
may be an older version (the merge still verifies with the manifest) or not
whole (said as damage, and rewritten). The copy covers a manifest damaged
later; a crash and a damaged manifest at once are two faults, not guarded
against.

Not verified, and not warned about: a folder with neither record (its
checkpoints written before manifests existed, or copied out of their folder
alone: a missing record is what such a copy looks like, not damage). A
folder with the manifest alone was written before the copy existed: it is
verified against the manifest, and the next write adds the copy.

Why the names of one checkpoint are written once (``names_at_end``): after a
checkpoint's rename its name is recorded, then best.ckpt's and a top-k
copy's links, then the names dropped: on a small model each record write
(two files, one fsynced) is a visible share of an epoch. The checkpoint
writer (writer.py) groups what follows one rename into one write at its end.
Nothing above changes by the wait: until that write the records hold the
checkpoint's entry in ``recent`` (written before the rename), so every file
then on disk matches an entry, as after a kill between the rename and the
name's record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ...runs.atomic import atomic_write
from ...runs.folder import CheckpointFolder
from .errors import CheckpointError

RECENT = 4
MISSING = "missing"
logger = logging.getLogger("expresso")
_warned: set[str] = set()  # a command reads the records many times: each damage is said once per process


class _Record(NamedTuple):
    """One record file: its well-formed entries, and what is wrong with it (None: nothing)."""

    path: Path
    files: dict[str, dict[str, Any]]
    recent: list[dict[str, Any]]
    problem: str | None


def _load(path: Path) -> _Record:
    """A record file, keeping only well-formed entries: a damaged record verifies what it still can rather than crash."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return _Record(path, {}, [], MISSING)
    except OSError as exc:
        return _Record(path, {}, [], f"unreadable ({exc.strerror or exc})")
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return _Record(path, {}, [], "damaged (not JSON)")
    files = data.get("files") if isinstance(data, dict) else None
    recent = data.get("recent") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not isinstance(recent, list):
        return _Record(path, {}, [], 'damaged (not {"files": {...}, "recent": [...]})')
    sound_files = {name: entry for name, entry in files.items() if _sound(entry)}
    sound_recent = [entry for entry in recent if _sound(entry)]
    dropped = len(files) - len(sound_files) + len(recent) - len(sound_recent)
    problem = f"damaged ({dropped} malformed {'entry' if dropped == 1 else 'entries'})" if dropped else None
    return _Record(path, sound_files, sound_recent, problem)


def _sound(entry: Any) -> bool:
    return isinstance(entry, dict) and type(entry.get("size")) is int and isinstance(entry.get("sha256"), str)


def _records(folder: Path) -> tuple[_Record, _Record]:
    """The manifest and its copy, read; what is wrong with either said once (see ``_damaged``)."""
    records = _load(CheckpointFolder(folder).manifest), _load(CheckpointFolder(folder).manifest_copy)
    damaged = _damaged(records)
    if damaged:
        sound = [record for record in records if record.problem is None]
        if sound:
            then = f"the checkpoints are verified against {sound[0].path}, and both are rewritten at the next write"
        elif any(record.files for record in records):
            then = f"the checkpoints in {folder} are verified against the entries that remain"
        else:
            then = f"the checkpoints in {folder} cannot be verified"
        message = "; ".join(f"{record.path}: {record.problem}" for record in damaged) + f"; {then}"
        if message not in _warned:
            _warned.add(message)
            logger.warning("expresso: warning: %s", message)
    return records


def _damaged(records: tuple[_Record, _Record]) -> list[_Record]:
    """The records to complain about: not a missing pair (nothing was recorded), nor a missing copy beside a sound manifest (an older folder)."""
    manifest, copy = records
    if copy.problem == MISSING and manifest.problem in (None, MISSING):
        return []
    return [record for record in records if record.problem is not None]


class _Grouping(threading.local):
    """The name changes waiting for the end of ``names_at_end`` on this thread: folder -> the records' data."""

    def __init__(self) -> None:
        self.active = False
        self.pending: dict[Path, dict[str, Any]] = {}


_grouping = _Grouping()


@contextlib.contextmanager
def names_at_end() -> Iterator[None]:
    """Within the block, on this thread, ``written``, ``alias`` and ``forget`` are recorded in one write at its end.

    ``about_to_write`` still writes at once (its entry must be on disk before
    the rename), with the names waiting so far. The end writes even when the
    block raised: the names describe files already in place; a failure of that
    write then is logged, and the block's own exception propagates.
    """
    if _grouping.active:  # nested: the outer block writes
        yield
        return
    _grouping.active = True
    try:
        yield
    except BaseException:
        try:
            _write_pending()
        except OSError as exc:
            logger.warning("expresso: warning: could not record the checkpoint names: %s", exc)
        raise
    else:
        _write_pending()
    finally:
        _grouping.active, _grouping.pending = False, {}


def _write_pending() -> None:
    pending, _grouping.pending = _grouping.pending, {}
    for folder, data in pending.items():
        _write(folder, data)


def _changed(folder: Path, data: dict[str, Any]) -> None:
    """Record a name change: now, or at the end of the ``names_at_end`` block this thread is in."""
    if _grouping.active:
        _grouping.pending[folder] = data
    else:
        _write(folder, data)


def _read(folder: Path) -> dict[str, Any]:
    """What both records hold, merged, as the next write records it (with the name changes waiting on this thread).

    The names are the manifest's when it is sound: written first, it is the
    newer after a kill between the two (a name the copy still lists may be a
    file already deleted); else the copy's, with what the manifest kept.
    """
    waiting = _grouping.pending.get(folder)
    if waiting is not None:
        return {
            "files": {name: dict(entry) for name, entry in waiting["files"].items()},
            "recent": list(waiting["recent"]),
        }
    manifest, copy = _records(folder)
    recent: list[dict[str, Any]] = []
    for entry in [*manifest.recent, *copy.recent]:
        if all(entry["sha256"] != kept["sha256"] for kept in recent):
            recent.append(entry)
    files = manifest.files if manifest.problem is None else {**copy.files, **manifest.files}
    return {"files": dict(files), "recent": recent}


def _write(folder: Path, data: dict[str, Any]) -> None:
    """Both records, the manifest first. The manifest's file is fsynced, not the folder: after an OS crash it is whole,
    and any version of it verifies the checkpoints then on disk (entries are recorded before each rename); the
    checkpoints' folder fsyncs make it current. The copy is not fsynced (the module's docstring says why)."""
    text = json.dumps(data, indent=1)
    atomic_write(CheckpointFolder(folder).manifest, text, durable=True, sync_folder=False)
    atomic_write(CheckpointFolder(folder).manifest_copy, text, durable=False)


def about_to_write(folder: Path, entry: dict[str, Any]) -> None:
    """Record a checkpoint's bytes before they are renamed into place."""
    data = _read(folder)
    data["recent"] = [{**entry, "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, *data["recent"]][:RECENT]
    _grouping.pending.pop(folder, None)  # written now, with this write
    _write(folder, data)


def written(folder: Path, name: str, entry: dict[str, Any], rotated: bool = False) -> None:
    """``name`` now holds ``entry``; with ``rotated``, what it held before is ``previous.ckpt``."""
    data = _read(folder)
    if rotated and name in data["files"]:
        data["files"][CheckpointFolder.PREVIOUS] = data["files"][name]
    data["files"][name] = (
        data["recent"][0] if data["recent"] and data["recent"][0]["sha256"] == entry["sha256"] else entry
    )
    _changed(folder, data)


def alias(folder: Path, name: str, of: str, entry: dict[str, Any] | None = None) -> None:
    """``name`` is a copy (a link) of ``of``: e.g. best.ckpt of last.ckpt.

    ``entry``: ``of``'s bytes, when the name ``of`` may still be recorded with what it held before (a kill
    between its rename and ``written``: the resume that links it again passes the entry its file matches).
    """
    data = _read(folder)
    if entry is not None or of in data["files"]:
        data["files"][name] = entry if entry is not None else data["files"][of]
        _changed(folder, data)


def forget(folder: Path, name: str) -> None:
    data = _read(folder)
    if data["files"].pop(name, None) is not None:
        _changed(folder, data)


def entry_of(path: Path) -> dict[str, Any] | None:
    """The recorded entry matching the file at ``path`` (None when it matches none)."""
    return _matching(path, _records(path.parent))


def _matching(path: Path, records: tuple[_Record, _Record]) -> dict[str, Any] | None:
    """Any entry of either record with the file's size and sha256 (hashed only when some size matches)."""
    size = path.stat().st_size
    entries = [entry for record in records for entry in [*record.files.values(), *record.recent]]
    candidates = [entry for entry in entries if entry["size"] == size]
    if not candidates:
        return None
    digest = sha256_of(path)
    return next((entry for entry in candidates if entry["sha256"] == digest), None)


def verify(path: Path) -> None:
    """Raise ``CheckpointError`` when a record names ``path`` and the file matches none of the entries recorded.

    A name never recorded (a checkpoint written before manifests existed, or
    copied in) is not verified: there is nothing to compare with.
    """
    records = _records(path.parent)
    named = [record for record in records if path.name in record.files]
    if not named or _matching(path, records) is not None:
        return
    recorded = named[0].files[path.name]
    raise CheckpointError(
        f"{path}: damaged: {path.stat().st_size} bytes, sha256 {sha256_of(path)[:12]}, matching no checkpoint"
        f" in {named[0].path} (recorded: {recorded['size']} bytes, sha256 {recorded['sha256'][:12]})"
    )


def repair(folder: Path) -> bool:
    """Rewrite both records from what they still hold when one is damaged or missing beside the other; whether it did.

    Only for the folder's one writer (``resume``, under the run folder's lock): the records are the writer's.
    """
    records = _records(folder)
    if not _damaged(records) or not any(record.files or record.recent for record in records):
        return False
    try:
        _write(folder, _read(folder))
    except (
        OSError
    ):  # a read-only folder: verification still works from the sound record; the run's first write will say
        return False
    return True


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resume_point(folder: Path, log) -> Path:
    """``last.ckpt`` if it is sound, else ``previous.ckpt`` (saying why); ``CheckpointError`` when neither is.

    Called by the folder's writer (``expresso resume``): a damaged record is rewritten from the other first.
    """
    last, previous = CheckpointFolder(folder).last, CheckpointFolder(folder).previous
    repair(folder)
    try:
        if not last.is_file():
            raise CheckpointError(f"{last}: checkpoint not found")
        verify(last)
        return last
    except CheckpointError as first:
        if not previous.is_file():
            raise
        try:
            verify(previous)
        except CheckpointError as second:
            raise CheckpointError(f"{first}; and the fallback {second}") from None
        step = (entry_of(previous) or {}).get("step")
        log(
            f"{first}\nresuming from the previous checkpoint instead: {previous}"
            + (f" (step {step})" if step is not None else "")
        )
        return previous
