"""Config errors that name where, what was received and what was expected.

A config is read from several files and the command line, so a bare
"invalid value" is useless: every problem carries the place it came from (a
file, or the command line), the dotted key path inside the resolved tree, and
a close-match suggestion where one exists. Problems are collected, not raised
one at a time, so a user fixes a whole config in one pass.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import BadInput

KeyPath = tuple  # tuple of str (mapping keys) and int (list indices)


def format_key(path: Sequence) -> str:
    """Render ``("callbacks", 0, "patience")`` as ``callbacks.0.patience``."""
    return ".".join(str(part) for part in path)


def close_matches(word: str, candidates: Iterable, cutoff: float = 0.6) -> list[str]:
    """The candidates most likely meant by ``word``: the best and any about as close (at most 3)."""
    names = [str(c) for c in candidates]
    word = str(word)

    def score(name: str) -> float:
        # Typos sit more often at the end of a word: a shared prefix breaks ties.
        prefix = len(os.path.commonprefix([word, name]))
        return difflib.SequenceMatcher(None, word, name).ratio() + 0.02 * min(prefix, 5)

    scored = sorted(((score(name), name) for name in names), key=lambda pair: -pair[0])
    scored = [(value, name) for value, name in scored if value >= cutoff]
    if scored:
        best = scored[0][0]
        return [name for value, name in scored[:3] if value >= best - 0.1]
    # Case slips ("adamw" for "AdamW") are common and difflib scores them low.
    lowered = {name.lower(): name for name in names}
    return [lowered[str(word).lower()]] if str(word).lower() in lowered else []


def closest(word: str, candidates: Iterable, cutoff: float = 0.6) -> str | None:
    """The single most likely candidate, if any."""
    matches = close_matches(word, candidates, cutoff)
    return matches[0] if matches else None


def suggest(word: str, candidates: Iterable, template: str = "'{}'") -> str | None:
    """A hint such as ``'weight_decay'`` or ``'Adam' or 'AdamW'``; None when nothing is close."""
    matches = close_matches(word, candidates)
    return " or ".join(template.format(m) for m in matches) or None


def describe(value: object) -> str:
    """A short, unambiguous rendering of a received value: ``'ten' (str)``."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config.

    ``where`` is a file path for display or ``"command line"``; ``key`` the
    dotted key path ("" for the file as a whole); ``hint`` a suggestion that
    is rendered as "did you mean <hint>?".
    """

    where: str
    key: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        place = f"{self.where}: {self.key}" if self.key else self.where
        text = f"{place}: {self.message}"
        if self.hint:
            text += f"; did you mean {self.hint}?"
        return text


class ConfigError(BadInput, ValueError):
    """One or more problems in a config; ``str()`` lists them, one per line."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems in the config:"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def raise_if(problems: Sequence[Problem]) -> None:
    if problems:
        raise ConfigError(problems)
