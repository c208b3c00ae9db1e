"""The user's project a config belongs to: where its modules are imported from, and its ``configs/`` folder.

The project root of a config file is, first found:

1. for a run folder's config.yaml, the project the run was started in
   (run.json's ``project_root``), so a copied run still finds its code;
2. the nearest folder above the file that holds ``pyproject.toml``,
   ``setup.py``, ``setup.cfg`` or ``.git`` (where packaging tools and git say
   a project starts). A folder named ``configs`` never counts: a ``configs/``
   kept as a git submodule holds a ``.git`` of its own;
3. the folder holding the *outermost* folder named ``configs`` above the file,
   so ``experiments/tune_lr/large/configs/exp.yaml`` in a project without
   markers still belongs to the project, not to ``large/``;
4. the working directory.

The configs root, where a file reference resolves when it is not next to the
referencing file, is ``<project root>/configs`` when that folder exists, else
the outermost folder named ``configs`` between the project root and the file
(``examples/digits/configs`` in a repository without a top-level
``configs/``), else none.

``how`` says which rule found the root: an import error repeats it, because
"no module named 'my_project'" is only useful with where it was looked for.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..runs.folder import RunFolder
from .files import is_dir

MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")  # .git is a file in worktrees and submodules
CONFIGS = "configs"


@dataclasses.dataclass(frozen=True)
class Project:
    root: Path
    how: str  # "the folder holding pyproject.toml", ...: completes "project root: <root>, ..."
    configs: Path | None  # the configs root, if any


def find_project(folder: Path, recorded: Path | None = None) -> Project:
    """The project of a config file in ``folder`` (for a config given as a dict: the working directory).

    ``recorded``: the project root a run folder's run.json names, if this is a run's config.yaml.
    """
    folder = folder.resolve()
    above = [folder, *folder.parents]
    named_configs = [path for path in above if path.name == CONFIGS]
    marked = _nearest_marked(above) if recorded is None else None
    if recorded is not None:
        root, how = recorded.resolve(), f"as {RunFolder.RECORD} recorded it when the run started"
    elif marked is not None:
        root, how = marked[0], f"the folder holding {marked[1]}"
    elif named_configs:
        root, how = named_configs[-1].parent, f"the folder holding {CONFIGS}/"
    else:
        root, how = (
            Path.cwd().resolve(),
            f"the working directory, as no {', '.join(MARKERS)} or {CONFIGS}/ is above the config",
        )
    return Project(root, how, _configs_root(root, named_configs))


def _nearest_marked(above: list[Path]) -> tuple[Path, str] | None:
    """The nearest folder holding a marker, and the marker; a folder named configs never counts."""
    for path in above:
        if path.name != CONFIGS:
            for marker in MARKERS:
                if _exists(path / marker):
                    return path, marker
    return None


def _configs_root(root: Path, named_configs: list[Path]) -> Path | None:
    if is_dir(root / CONFIGS):
        return root / CONFIGS
    below_root = [path for path in named_configs if path.is_relative_to(root) and path != root]
    return below_root[-1] if below_root else None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a folder we may not look into
        return False
