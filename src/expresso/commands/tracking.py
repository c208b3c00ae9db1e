"""``-u USER`` / ``--profile USER`` and ``--offline``: what train, resume and config --check share.

The profile (config/profiles.py) and ``--offline`` become options of the
run's loggers (config/logger_options.py), checked before any run folder
exists and applied when the loggers are built; the profile's ``env`` is set
in the process environment then. run.json keeps the profile's name and file
and the names of what it supplied, never a value, and whether the run is
offline. ``expresso resume`` continues with what run.json recorded: the same
profile file (read again, so a rotated key is picked up) and offline if the
run was; ``-u`` names another profile in the same folder (for a run started
without one: the run's project's ``configs/profiles``), ``--offline``
takes an online run offline from there on (there is no way back online:
the hosted trackers' offline runs are uploaded by their own tools).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a run is prepared: `expresso --help` loads none of the config layer
    from ..config.logger_options import LoggerOptions
    from ..config.profiles import Profile


def add_arguments(parser: argparse.ArgumentParser, resume: bool = False) -> None:
    if resume:
        profile_help = "the profile configs/profiles/USER.yaml (default: the one the run was started with)"
        offline_help = "hosted trackers go offline from here on (a run started offline stays offline)"
    else:
        profile_help = (
            "merge configs/profiles/USER.yaml (tracker credentials, workspace and project names) into the loggers"
        )
        offline_help = "hosted trackers stay offline (a logger that can only send to a server is refused)"
    parser.add_argument("-u", "--profile", metavar="USER", help=profile_help)
    parser.add_argument("--offline", action="store_true", help=offline_help)


@dataclass(frozen=True)
class Tracking:
    """The profile and --offline of a run, checked against its config: the loggers' extra options and run.json's fields."""

    profile: Profile | None
    offline: bool
    options: LoggerOptions

    @property
    def by_index(self) -> dict[int, dict[str, Any]]:
        return self.options.by_index

    def record(self) -> dict[str, Any]:
        """run.json's ``offline`` and ``profile`` (names only)."""
        return {"offline": self.offline, "profile": self.options.record(self.profile)}

    def apply_env(self) -> None:
        """The profile's environment (a tracker's credentials), for the loggers about to be built (--offline is their option).

        From here on the profile's values are hidden from what this process says (``redacted``).
        """
        if self.profile is not None:
            hide(secrets(self.profile.loggers) + secrets(self.profile.env))
            os.environ.update(self.profile.env)


def checked_config(
    source: Any,
    overrides: list[str],
    name: str | None,
    offline: bool,
    file: Path | None = None,
    interpolations: Sequence = (),
) -> tuple[Any, Tracking]:
    """The config checked as ``expresso train`` checks it, and its run's profile and --offline checked against it.

    The profile is matched to the validated config's loggers first, so the check counts what it supplies
    as given (a tracker's required ``api_key`` is not missing from the config: it is the profile's).
    """
    from ..assembly import check
    from ..config import load_config

    supplied = None
    if name is not None or file is not None or offline:
        track = prepare(load_config(source, overrides, interpolations=interpolations), name, offline, file)
        supplied = track.options.supplied
    config = check(load_config(source, overrides, check=True, interpolations=interpolations, supplied=supplied))
    if supplied is None:
        track = prepare(config, None, False)
    return config, track


def prepare(config, name: str | None, offline: bool, file: Path | None = None) -> Tracking:
    """Load profile ``name`` (or the profile ``file``) and check it and ``offline`` against the checked ``config``; ConfigError (exit 2)."""
    from ..config.logger_options import logger_options
    from ..config.profiles import load_profile, profiles_folder

    profile = None
    if name is not None:
        profile = load_profile(name, file.parent if file is not None else profiles_folder(config.project))
    elif file is not None:
        asked = f"the run was started with -u {file.stem}; -u USER takes another from this folder"
        profile = load_profile(file.stem, file.parent, asked)
    return Tracking(profile, offline, logger_options(config.to_dict(), config.where, profile, offline))


def recorded(record: dict[str, Any]) -> tuple[Path | None, bool]:
    """The profile file and offline flag run.json recorded for a run (None: it had no profile)."""
    profile = record.get("profile")
    file = profile.get("file") if isinstance(profile, dict) else None
    return (Path(file) if isinstance(file, str) and file else None), bool(record.get("offline"))


# -- keeping a profile's secrets out of what the process says -----------------------------------------------
# expresso never writes a profile's values; a tracker's own error may quote what it was given ("cannot reach
# https://user:TOKEN@host"). Log lines, run.json's error, log.txt's traceback and the console's error line go
# through ``redacted`` once the profile is applied. Hidden are the values of options and variables whose names
# say they are secret (api_key, MLFLOW_TRACKING_TOKEN, password...) and the password of any URL: masking a
# workspace or a folder name too would garble every log line that names the run. Values shorter than
# MIN_HIDDEN are not hidden: they would mask ordinary words.
SECRET_NAMES = ("key", "token", "secret", "password", "passwd", "credential", "auth")
MIN_HIDDEN = 4
MASK = "***"
_hidden: set[str] = set()


def hide(values: list[str]) -> None:
    """Hide these values from every message of this process from now on (a profile's credentials)."""
    _hidden.update(value for value in values if len(value) >= MIN_HIDDEN)
    if _hidden and sys.excepthook is sys.__excepthook__:
        sys.excepthook = _redacting_excepthook  # an error nobody catches prints its traceback redacted too


def redacted(message: object) -> str:
    """``message`` as text, every hidden value masked."""
    text = str(message)
    for value in sorted(_hidden, key=len, reverse=True):  # the longest first: one value may contain another
        text = text.replace(value, MASK)
    return text


class Redacting(logging.Filter):
    """A log line with a hidden value in it is written with the value masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _hidden:
            message = record.getMessage()
            masked = redacted(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


def _redacting_excepthook(kind, value, trace) -> None:
    sys.stderr.write(redacted("".join(traceback.format_exception(kind, value, trace))))


def secrets(tree: Any, secret: bool = False) -> list[str]:
    """The secret texts of a profile's section: under a name that says so (at any depth), and URLs' passwords."""
    if isinstance(tree, str):
        found = [tree] if secret else []
        if "://" in tree:
            from urllib.parse import urlsplit

            try:
                password = urlsplit(tree).password
            except ValueError:
                password = None
            found += [password] if password else []
        return found
    if isinstance(tree, dict):
        return [
            text
            for name, value in tree.items()
            for text in secrets(value, secret or any(word in str(name).lower() for word in SECRET_NAMES))
        ]
    if isinstance(tree, list):
        return [text for value in tree for text in secrets(value, secret)]
    return []
