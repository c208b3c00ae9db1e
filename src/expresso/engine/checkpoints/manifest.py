"""checkpoints/manifest.json: the size, sha256 and loop position of every checkpoint written, so a damaged file is caught.

A checkpoint that lost bytes (a truncated copy, a bad disk block, a flipped
bit) may still unpickle into wrong weights; comparing its size and sha256
with what the writer recorded catches it before anything is loaded.

Why a list of recent entries beside the names: the manifest and the
checkpoint are two files, and no rename moves both at once. Each write
records its entry in ``recent`` before the checkpoint is renamed into place,
and the names (``last.ckpt``, ``previous.ckpt``, ``best.ckpt``...) after, so
at every moment each file on disk matches an entry: a file is valid when its
size and hash equal any entry of the manifest. A folder without a manifest
(checkpoints written before it existed, or copied alone) is not verified.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from ...runs.atomic import atomic_write
from ...runs.folder import CheckpointFolder
from .errors import CheckpointError

RECENT = 4


def _read(folder: Path) -> dict[str, Any]:
    """The manifest, keeping only well-formed entries: a damaged manifest verifies nothing rather than crash."""
    try:
        data = json.loads(CheckpointFolder(folder).manifest.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        data = None
    files = data.get("files") if isinstance(data, dict) else None
    recent = data.get("recent") if isinstance(data, dict) else None
    return {
        "files": {name: e for name, e in files.items() if _sound(e)} if isinstance(files, dict) else {},
        "recent": [e for e in recent if _sound(e)] if isinstance(recent, list) else [],
    }


def _sound(entry: Any) -> bool:
    return isinstance(entry, dict) and type(entry.get("size")) is int and isinstance(entry.get("sha256"), str)


def _write(folder: Path, data: dict[str, Any]) -> None:
    """The file fsynced, not the folder: after an OS crash it is whole, and any version of it verifies the checkpoints
    then on disk (entries are recorded before each rename); the checkpoints' folder fsyncs make it current."""
    atomic_write(CheckpointFolder(folder).manifest, json.dumps(data, indent=1), durable=True, sync_folder=False)


def about_to_write(folder: Path, entry: dict[str, Any]) -> None:
    """Record a checkpoint's bytes before they are renamed into place."""
    data = _read(folder)
    data["recent"] = [{**entry, "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, *data["recent"]][:RECENT]
    _write(folder, data)


def written(folder: Path, name: str, entry: dict[str, Any], rotated: bool = False) -> None:
    """``name`` now holds ``entry``; with ``rotated``, what it held before is ``previous.ckpt``."""
    data = _read(folder)
    if rotated and name in data["files"]:
        data["files"][CheckpointFolder.PREVIOUS] = data["files"][name]
    data["files"][name] = (
        data["recent"][0] if data["recent"] and data["recent"][0]["sha256"] == entry["sha256"] else entry
    )
    _write(folder, data)


def alias(folder: Path, name: str, of: str) -> None:
    """``name`` is a copy (a link) of ``of``: e.g. best.ckpt of last.ckpt."""
    data = _read(folder)
    if of in data["files"]:
        data["files"][name] = data["files"][of]
        _write(folder, data)


def forget(folder: Path, name: str) -> None:
    data = _read(folder)
    if data["files"].pop(name, None) is not None:
        _write(folder, data)


def entry_of(path: Path) -> dict[str, Any] | None:
    """The manifest entry matching the file at ``path`` (None when it matches none)."""
    data = _read(path.parent)
    size = path.stat().st_size
    candidates = [e for e in [*data["files"].values(), *data["recent"]] if e.get("size") == size]
    if not candidates:
        return None
    digest = sha256_of(path)
    return next((e for e in candidates if e.get("sha256") == digest), None)


def verify(path: Path) -> None:
    """Raise ``CheckpointError`` when the manifest records ``path``'s name and the file matches none of its entries.

    A name the manifest never recorded (a checkpoint written before manifests
    existed, or copied in) is not verified: there is nothing to compare with.
    """
    manifest = CheckpointFolder(path.parent).manifest
    if not manifest.is_file() or path.name not in _read(path.parent)["files"]:
        return
    if entry_of(path) is None:
        recorded = _read(path.parent)["files"].get(path.name)
        expected = f" (recorded: {recorded['size']} bytes, sha256 {recorded['sha256'][:12]})" if recorded else ""
        raise CheckpointError(
            f"{path}: damaged: {path.stat().st_size} bytes, sha256 {sha256_of(path)[:12]}, matching no checkpoint in {manifest}{expected}"
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resume_point(folder: Path, log) -> Path:
    """``last.ckpt`` if it is sound, else ``previous.ckpt`` (saying why); ``CheckpointError`` when neither is."""
    last, previous = CheckpointFolder(folder).last, CheckpointFolder(folder).previous
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
