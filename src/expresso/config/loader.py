"""``load_config``: from a file (or a dict) and overrides to one validated, resolved tree.

The stages, each collecting every problem it finds before the next begins:

    compose files (references, extends)  ->  fill schema defaults
    ->  apply command-line overrides  ->  resolve ${...} interpolations
    ->  validate against the schema  ->  [check: import classes, signatures,
    task injection]  ->  the graph sections' general form (shapes, cross
    references; kept as ``Config.wiring``)

Everything up to the check is free of torch, so ``expresso config`` is fast.
The printed tree (``Config.to_yaml``) is a fixed point: loading it again
gives the same tree.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..runs.folder import RunFolder
from ..runs.record import RecordError, read_record
from . import check as _check
from .callables import add_project_to_path
from .compose import Composer, display
from .errors import ConfigError, Problem, suggest
from .experiments import experiment_of
from .files import clashing_keys, config_files_in, dump_yaml, is_dir, is_file
from .interpolation import escape, key_interpolations, resolve
from .overrides import apply_overrides
from .project import Project, find_project
from .schema import SETTINGS
from .validation import settings_defaults, validate
from .wiring import Wiring, general_form

_EMPTY = {"metrics": {}, "callbacks": [], "loggers": ["csv"], "task": {}}


class Config(Mapping):
    """A resolved config: a read-only mapping over plain data that knows where each key came from."""

    def __init__(
        self,
        tree: dict,
        composer: Composer,
        source: Path | None,
        project: Project,
        checked: bool = False,
        interpolations: Sequence[tuple[tuple, str]] = (),
        wiring: Wiring | None = None,
    ):
        self._tree = tree
        self._composer = composer
        self.source = source
        self.project = project
        self.project_root = project.root
        self.checked = checked
        # set by expresso.assembly.check once the device and the graph's wiring hold too (torch-side; not this layer's)
        self.wired = False
        # (key path, expression) of the values that followed other keys before resolution: run.json keeps them for resume
        self.interpolations = list(interpolations)
        self._wiring = wiring

    def __getitem__(self, key: str) -> Any:
        return self._tree[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tree)

    def __len__(self) -> int:
        return len(self._tree)

    def __repr__(self) -> str:
        return f"Config({self.source or '<dict>'}, keys={list(self._tree)})"

    def where(self, path: Sequence) -> str:
        """The file (or "command line") that set this key path."""
        return self._composer.where(tuple(path))

    @property
    def wiring(self) -> Wiring:
        """The graph sections in their general form (config/wiring.py), typed: computed once per config."""
        if self._wiring is None:
            wiring, problems = general_form(self._tree, self.where)
            if wiring is None:  # a loaded config passed this check; a Config made by hand may not have
                raise ConfigError(problems)
            self._wiring = wiring
        return self._wiring

    def to_dict(self) -> dict:
        return copy.deepcopy(self._tree)

    def to_yaml(self) -> str:
        return dump_yaml(escape(self._tree))

    def to_json(self) -> str:
        return json.dumps(escape(self._tree), indent=2, ensure_ascii=False)

    def check(self) -> Config:
        """Import every class and check its arguments; returns the config with task values injected (torch-free)."""
        if self.checked:
            return self
        add_project_to_path(self.project.root, self.project.how)
        tree, problems = _check.check(self._tree, self.where)
        if problems:
            raise ConfigError(problems)
        return Config(tree, self._composer, self.source, self.project, checked=True, interpolations=self.interpolations)


def load_config(
    source: str | os.PathLike | Mapping,
    overrides: Sequence[str] = (),
    *,
    check: bool = False,
    interpolations: Sequence[tuple[Sequence, str]] = (),
    supplied: Mapping[tuple, Sequence[str]] | None = None,
) -> Config:
    """Load, compose, override, resolve and validate a config; raise ConfigError listing every problem.

    ``source`` is a YAML, JSON or Python file, or a dict written in Python (its
    file references resolve against the working directory). With
    ``check=True`` every ``class`` is imported and its arguments checked, as
    ``expresso train`` does before it creates anything (the torch-side rest,
    device and graph wiring, is ``expresso.assembly.check``, which
    ``build_trainer`` runs). ``interpolations``
    ((key path, expression) pairs: ``Config.interpolations`` of an earlier
    load) are put back before the overrides, so a run folder's resolved
    config.yaml follows its keys again (``T_max: ${trainer.max_epochs}``);
    an override of such a key replaces its expression. ``supplied``: per
    component path, arguments the run gives besides the config (a profile's
    logger options), which the check counts as given.
    """
    if isinstance(source, Mapping):  # as if it were a file in the working directory
        project = find_project(Path.cwd())
        composer = Composer(project.configs)
        tree = composer.compose_tree(dict(copy.deepcopy(source)), "<dict>", Path.cwd())
        path, default_name = None, "experiment"
    else:
        path = Path(source)
        _require_file(path)
        project = find_project(path.parent, _run_project(path))
        composer = Composer(project.configs)
        tree = composer.compose_file(path)
        experiment = experiment_of(path)  # an experiment folder's hparams file: its run is named <folder>-<file>
        default_name = experiment.name if experiment is not None else path.stem
    add_project_to_path(
        project.root, project.how
    )  # the user's classes resolve for instantiate() too, not only for check
    if composer.problems:
        raise ConfigError(composer.problems)

    tree = _with_defaults(tree, default_name)
    _put_back(tree, interpolations)
    apply_overrides(tree, list(overrides), composer)
    if composer.problems:
        raise ConfigError(composer.problems)
    tree = _with_defaults(tree, default_name)  # `~metrics` or `~trainer.seed` is "back to the default", not "gone"
    problems = clashing_keys(tree, composer.where)
    if problems:
        raise ConfigError(problems)
    followed = key_interpolations(tree)
    tree, problems = resolve(tree, composer.where)
    if problems:
        raise ConfigError(problems)
    problems = validate(tree, composer.where)
    signature_problems: list[Problem] = []
    if check:  # one report: schema problems and signature problems together
        tree, signature_problems = _check.check(tree, composer.where, supplied)
    wiring = None
    if not problems:  # the graph sections' shapes, on the tree the config is built from (task values injected)
        wiring, problems = general_form(tree, composer.where)
    problems += signature_problems
    if problems:
        raise ConfigError(problems)
    return Config(tree, composer, path, project, checked=check, interpolations=followed, wiring=wiring)


def _put_back(tree: dict, interpolations: Sequence[tuple[Sequence, str]]) -> None:
    """Set each expression at its key path, where that path still exists (a later config may have dropped it)."""
    for path, expression in interpolations:
        parent: Any = tree
        for part in path[:-1]:
            parent = _child(parent, part)
        if path and _child(parent, path[-1]) is not None:
            parent[path[-1]] = expression


def _child(node: Any, key: Any) -> Any:
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return None


def _run_project(path: Path | None) -> Path | None:
    """A run folder's config.yaml resolves classes against the project the run came from."""
    record = RunFolder(path.parent).record if path is not None else None
    if record is None or not is_file(record):
        return None
    try:
        root = read_record(record).get("project_root")  # the one reader of run.json; a str or None
    except RecordError:
        return None
    return Path(root) if isinstance(root, str) and root and is_dir(Path(root)) else None


def _require_file(path: Path) -> None:
    if is_file(path):
        return
    hint = None
    if is_dir(path.parent):
        names = [p.name for p in config_files_in(path.parent)]
        parent = display(path.parent).replace("{", "{{").replace("}", "}}")
        hint = suggest(path.name, names, "'" + parent + "/{}'")
    what = "is a folder, not a config file" if is_dir(path) else "config file not found"
    raise ConfigError([Problem(display(path), "", what, hint)])


def _with_defaults(tree: dict, default_name: str) -> dict:
    """The tree with the name first and every framework section present, defaults filled."""
    out = {"name": tree.get("name", default_name)}
    out.update(tree)
    for key in _EMPTY:  # the graph sections (models, losses...) appear only when a config uses them
        out.setdefault(key, copy.deepcopy(_EMPTY[key]))
    for key, cls in SETTINGS.items():
        given = out.get(key, {})
        if isinstance(given, dict):
            out[key] = {**settings_defaults(cls), **given}
    return out
