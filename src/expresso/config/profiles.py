"""Profiles (``-u USER`` / ``--profile USER``): a person's credentials and tracker names, kept out of the run's record.

A profile is ``<configs root>/profiles/<USER>.yaml`` (the configs root of the
config being trained, as project.py finds it)::

    loggers:                      # options for the loggers a run lists, by short name or by class
      mlflow: {tracking_uri: https://mlflow.example.org}
      comet: {api_key: ..., workspace: ..., project_name: ...}
    env:                          # environment variables set for the run (a tracker's own credentials)
      MLFLOW_TRACKING_TOKEN: ...

Its values are secrets: they go to the logger constructors and the process
environment when the run is built, never into the config tree (config.yaml,
the hyperparameters trackers receive) and never into a message, which names
keys only. logger_options.py decides which options apply to a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compose import display
from .errors import ConfigError, Problem, suggest
from .files import FileProblem, is_dir, is_file, read_file
from .project import CONFIGS, Project

PROFILES = "profiles"
SECTIONS = ("loggers", "env")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Profile:
    """A loaded profile: its name and file, the options it holds per logger, the environment it sets."""

    name: str
    path: Path
    loggers: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def problem(self, key: str, message: str, hint: str | None = None) -> Problem:
        """A problem at ``key`` of this profile's file (the message must not repeat a value)."""
        return Problem(display(self.path), key, message, hint)


def profiles_folder(project: Project) -> Path:
    """``<configs root>/profiles``; a project without a configs root looks in ``<project root>/configs/profiles``."""
    return (project.configs or project.root / CONFIGS) / PROFILES


def load_profile(name: str, folder: Path, asked: str | None = None) -> Profile:
    """The profile ``name`` in ``folder``; ConfigError (exit 2) naming the file for a missing or malformed one.

    ``asked``: what asked for it, as a missing file's message says (default: ``-u NAME``).
    """
    if not _NAME.fullmatch(name):
        raise ConfigError(
            [
                Problem(
                    "command line",
                    "--profile",
                    f"received {name!r}, expected a profile name such as 'alice' (the file {display(folder / 'alice.yaml')})",
                )
            ]
        )
    path = folder / f"{name}.yaml"
    if not is_file(path):
        names = sorted(p.stem for p in folder.glob("*.yaml")) if is_dir(folder) else []
        hint = suggest(name, names, "-u {}")
        raise ConfigError([Problem(display(path), "", f"profile not found ({asked or f'-u {name}'})", hint)])
    try:
        data = read_file(path, display(path))
    except FileProblem as exc:
        raise ConfigError(exc.problems) from None
    profile = Profile(name, path)
    problems = _shape_problems(profile, data)
    if problems:
        raise ConfigError(problems)
    data = data or {}
    loggers = {str(key): dict(options or {}) for key, options in (data.get("loggers") or {}).items()}
    return Profile(name, path, loggers, dict(data.get("env") or {}))


def _shape_problems(profile: Profile, data: Any) -> list[Problem]:
    """What is wrong with the file's shape: unknown sections, options that are not mappings, env values that are not text."""
    if data is None:
        return []  # an empty profile supplies nothing
    if not isinstance(data, dict):
        return [
            profile.problem(
                "",
                f"received a value of type {type(data).__name__}, expected a mapping with keys {', '.join(SECTIONS)}",
            )
        ]
    problems = [
        profile.problem(str(key), f"unknown key (a profile holds: {', '.join(SECTIONS)})", suggest(str(key), SECTIONS))
        for key in data
        if key not in SECTIONS
    ]
    loggers = data.get("loggers")
    if loggers is not None and not isinstance(loggers, dict):
        problems.append(
            profile.problem(
                "loggers", f"received a value of type {type(loggers).__name__}, expected a mapping of logger -> options"
            )
        )
    for logger, options in (loggers or {}).items() if isinstance(loggers, dict) else ():
        if options is not None and not isinstance(options, dict):
            problems.append(
                profile.problem(
                    f"loggers.{logger}",
                    f"received a value of type {type(options).__name__}, expected a mapping of option -> value",
                )
            )
    env = data.get("env")
    if env is not None and not isinstance(env, dict):
        problems.append(
            profile.problem(
                "env", f"received a value of type {type(env).__name__}, expected a mapping of variable -> text"
            )
        )
    for variable, value in env.items() if isinstance(env, dict) else ():
        if not _ENV_NAME.fullmatch(str(variable)):
            problems.append(
                profile.problem(f"env.{variable}", "expected an environment variable's name (letters, digits, _)")
            )
        elif not isinstance(value, str):
            # the value itself is not shown: it may be a secret
            problems.append(
                profile.problem(
                    f"env.{variable}", f"received a value of type {type(value).__name__}, expected text (quote it)"
                )
            )
    return problems
