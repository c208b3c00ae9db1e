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
    shown = _both_values(found, config_file.name, "checkpoint")
    raise UsageError(
        f"{config_file} differs from the config {checkpoint.name} was trained with: {shown}"
        f" (a damaged file? put the checkpoint's values back; a resume changes settings with KEY=VALUE)"
    )


def job_differences(ran_with: dict, job: dict, resumes: list[dict]) -> dict[tuple, dict[str, Any]]:
    """Where a re-run job's config (its file and KEY=VALUEs, composed again) differs from the run it finds.

    A requeued job runs its command again, so the two agree unless the file or the command changed since
    the run started, and then the run would go on with its recorded config, ignoring the change. A key an
    earlier ``expresso resume`` changed is no difference while the job still gives the value it had before
    that resume (the job's command is older than the resume).
    """
    found = {}
    for path, change in diff(ran_with, job).items():
        if _changed_from(resumes, format_key(path), change.get("to", _MISSING)):
            continue
        found[path] = change
    return found


def refuse_job(run_dir: Path, found: dict[tuple, dict[str, Any]]) -> None:
    """One UsageError (exit 2) naming every key in which the job's config differs from the run's, with both values."""
    shown = _both_values(found, "this command", "the run")
    raise UsageError(
        f"{run_dir}: holds a run started with another config: {shown}; the run goes on only with its own "
        f"(`expresso resume {run_dir} KEY=VALUE` changes its settings), or --force moves it aside and starts over"
    )


def _both_values(found: dict[tuple, dict[str, Any]], new: str, old: str) -> str:
    """``key: new value (new) vs old value (old)`` for each difference, joined for one error line."""
    return "; ".join(
        f"{format_key(path)}: {_shown(change, 'to')} ({new}) vs {_shown(change, 'from')} ({old})"
        for path, change in found.items()
    )


def _changes_of(resumes: list[dict], key: str) -> list[dict]:
    """The changes of ``key`` run.json's resume entries record, oldest first."""
    changes = [(entry.get("changes") or {}).get(key) if isinstance(entry, dict) else None for entry in resumes]
    return [change for change in changes if isinstance(change, dict)]


def _changed_from(resumes: list[dict], key: str, value: Any) -> bool:
    """Whether a resume recorded in run.json changed ``key`` from ``value`` (from being unset: ``_MISSING``)."""
    return any(change.get("from", _MISSING) == value for change in _changes_of(resumes, key))


def _recorded(resumes: list[dict], key: str, value: Any) -> bool:
    """Whether the latest change run.json records for ``key`` set it to ``value`` (a removal: to nothing)."""
    changes = _changes_of(resumes, key)
    if not changes:
        return False
    latest = changes[-1]
    return latest.get("to", _MISSING) == value if value is not _MISSING else "to" not in latest


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
