"""config.yaml against the config the checkpoint was trained with: a resume trusts neither blindly.

A checkpoint holds the config its run was trained with. config.yaml may
differ from it for three honest reasons only: a key this command line
overrides, a change an earlier resume recorded in run.json's ``resumes``
(the file is rewritten when a resume starts, the checkpoint only at its
next save: a kill in between leaves them apart), or nothing else. Any other
difference is damage (a flipped bit that keeps the YAML valid: ``seed: 1``
for ``seed: 0``) and the resume is refused, naming every differing key with
both values. A checkpoint written before checkpoints held their config
(``config`` missing) is not compared.

The accepted differences are changes relative to the checkpoint: the
resume applies them as it applies its own overrides (resume_changes.py), so
a run continues with what config.yaml says, not with the checkpoint's old
setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config.errors import format_key
from ..config.files import index_key
from . import UsageError
from .resume_changes import diff

_MISSING = object()


def untrusted(
    saved: dict, on_file: dict, resolved: dict, overrides: list[str], resumes: list[dict]
) -> dict[tuple, dict[str, Any]]:
    """The differences between the checkpoint's config (``saved``) and config.yaml's (``on_file``) that nothing explains.

    ``resolved``: config.yaml with this command line's overrides applied (a
    key whose value they changed, directly or as a value that follows one,
    is theirs); ``resumes``: run.json's resume entries, oldest first.
    """
    given = [_override_path(text) for text in overrides]
    found = {}
    for path, change in diff(saved, on_file).items():
        if any(path[: len(key)] == key for key in given) or _at(resolved, path) != _at(on_file, path):
            continue
        if _recorded(resumes, format_key(path), _at(on_file, path)):
            continue
        found[path] = change
    return found


def refuse(config_file: Path, checkpoint: Path, found: dict[tuple, dict[str, Any]]) -> None:
    """One UsageError (exit 2) naming the file, the checkpoint and every differing key with both values."""
    shown = "; ".join(
        f"{format_key(path)}: {_shown(change, 'to')} ({config_file.name}) vs {_shown(change, 'from')} (checkpoint)"
        for path, change in found.items()
    )
    raise UsageError(
        f"{config_file} differs from the config {checkpoint.name} was trained with: {shown}"
        f" (a damaged file? put the checkpoint's values back; a resume changes settings with KEY=VALUE)"
    )


def _recorded(resumes: list[dict], key: str, value: Any) -> bool:
    """Whether the latest change run.json records for ``key`` set it to ``value`` (a removal: to nothing)."""
    for entry in reversed(resumes):
        change = (entry.get("changes") or {}).get(key) if isinstance(entry, dict) else None
        if isinstance(change, dict):
            return change.get("to", _MISSING) == value if value is not _MISSING else "to" not in change
    return False


def _override_path(text: str) -> tuple:
    key = text.lstrip("~+").partition("=")[0]
    return tuple(p if (index := index_key(p)) is None else index for p in key.split("."))


def _at(tree: Any, path: tuple) -> Any:
    for part in path:
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and isinstance(part, int) and 0 <= part < len(tree):
            tree = tree[part]
        else:
            return _MISSING
    return tree


def _shown(change: dict[str, Any], side: str) -> str:
    return repr(change[side]) if side in change else "(unset)"
