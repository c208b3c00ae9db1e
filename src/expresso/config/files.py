"""Reading one config file (YAML, JSON or Python) into plain data, and writing YAML.

The three formats are equal citizens: each becomes a tree of dicts, lists,
str, int, float, bool and None, so the rest of the config system never sees
where a value came from. Anything else (a date, a tensor, a class object in a
Python config) is refused here with its key path, because the resolved config
must round-trip through YAML to reproduce a run.

The YAML dialect is PyYAML's safe one with fixes for traps researchers fall
into: ``1e-3`` is a float (YAML 1.1 wants ``1.0e-3``), a duplicated key is an
error instead of silently keeping the last value, and dates and base-60
numbers (``1:30``, which YAML 1.1 reads as 90) stay strings.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, describe, format_key
from .experiments import HPARAMS, PythonFileError, read_python_config, remember

EXTENSIONS = (".yaml", ".yml", ".json", ".py")

_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)


_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")


def _with_fixed_resolvers(base: Any) -> Any:
    """A subclass of a PyYAML loader/dumper with our implicit resolvers.

    Loader and dumper must agree, or a string such as ``"1e3"`` would be
    written unquoted and read back as a float. Typed ``Any`` as PyYAML's classes
    are: it ships no type information, so their resolver attributes are unknown to mypy.
    """
    cls: Any = type(f"Expresso{base.__name__}", (base,), {})
    cls.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    # YAML 1.1 reads 1:30 as the integer 90 (base 60); a time or a ratio should stay text.
    for first in "-+0123456789":
        cls.yaml_implicit_resolvers[first].insert(0, ("tag:yaml.org,2002:str", _SEXAGESIMAL))
    return cls


class _Loader(_with_fixed_resolvers(yaml.SafeLoader)):  # type: ignore[misc]
    def construct_mapping(self, node, deep=False):
        # Only keys written in this mapping count: one that overrides a value
        # brought in by a merge key (<<: *base) is allowed, as YAML intends.
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # unhashable key: the base class reports it
                    break
                if duplicate:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Dumper = _with_fixed_resolvers(yaml.SafeDumper)
_UNICODE_LINE_BREAKS = ("\x85", "\u2028", "\u2029")


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML writes "\x85" inside single quotes, where a reader folds it into a space: escape it in double quotes.
    style = '"' if any(mark in text for mark in _UNICODE_LINE_BREAKS) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


class UnreadableYAML(yaml.YAMLError):
    """YAML that parses but holds a value PyYAML fails to build with a plain Python error, or nests too deep to parse."""


def parse_yaml(text: str) -> Any:
    """Parse YAML text in expresso's dialect (used for files and override values).

    Every failure is a ``yaml.YAMLError``: PyYAML's constructors raise plain
    ValueError, KeyError or AttributeError for some tagged or oversized scalars
    (``!!int x``, ``!!bool maybe``, ``!!timestamp x``, an integer of 5,000
    digits), and its parser recurses once per level of nesting.
    """
    return _load(text, _Loader)


# libyaml's parser where PyYAML was built with it (its wheels are), the pure-Python one otherwise.
_WrittenLoader = _with_fixed_resolvers(getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def read_written_yaml(text: str) -> Any:
    """YAML that expresso wrote (a run's config.yaml), in expresso's dialect, parsed by libyaml where it is available.

    ``expresso runs`` reads one config per run: PyYAML's pure-Python parser
    spends ~10 ms on each (most of the command's time with 64 runs, and tens
    of seconds on a loaded machine), libyaml well under 1 ms. The same
    resolvers read the same values; what is not checked is duplicate keys,
    which ``dump_yaml`` never writes. libyaml refuses nesting past 1,000
    levels with a YAMLError rather than recursing. Failures are
    ``yaml.YAMLError``, as ``parse_yaml``'s.
    """
    return _load(text, _WrittenLoader)


def _load(text: str, loader: Any) -> Any:
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - both loaders derive from SafeLoader or CSafeLoader
    except yaml.YAMLError:
        raise
    except RecursionError:
        raise UnreadableYAML("nested too deeply to read") from None
    except Exception as exc:  # noqa: BLE001 - reading text into data: any failure means the text is bad
        raise UnreadableYAML(f"a value cannot be read ({type(exc).__name__}: {exc})") from None


def dump_yaml(tree: Any) -> str:
    return yaml.dump(tree, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)


def is_file(path: Path) -> bool:
    """``path.is_file()``, but false rather than an error for a name the system cannot look up (too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_dir(path: Path) -> bool:
    """``path.is_dir()``, but false rather than an error for a name the system cannot look up."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def config_files_in(folder: Path) -> list[Path]:
    """The config files in ``folder`` (for suggestions); none if it cannot be listed."""
    try:
        return [p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS]
    except (OSError, ValueError):
        return []


class FileProblem(Exception):
    """A file that cannot be read into plain data; carries the problems found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))


def read_file(path: Path, shown: str) -> Any:
    """Read ``path`` into plain data; ``shown`` is how the file is named in messages."""
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise FileProblem(
            [Problem(shown, "", f"unsupported config file type {suffix!r}; expected one of {', '.join(EXTENSIONS)}")]
        )
    try:
        if suffix == ".py":
            data = _read_python(path, shown)
        else:
            text = path.read_text(encoding="utf-8")
            data = _read_json(text, shown) if suffix == ".json" else _read_yaml(text, shown)
    except OSError as exc:
        raise FileProblem([Problem(shown, "", f"cannot read the file: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise FileProblem([Problem(shown, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    problems: list[Problem] = []
    data = _plain(data, (), shown, problems)
    if problems:
        raise FileProblem(problems)
    return data


def _read_yaml(text: str, shown: str) -> Any:
    try:
        return parse_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise FileProblem([Problem(shown, "", f"invalid YAML at {where}{what}")]) from None
    except yaml.YAMLError as exc:
        raise FileProblem([Problem(shown, "", f"invalid YAML: {exc}")]) from None


class _DuplicateKey(ValueError):
    pass


def _read_json(text: str, shown: str) -> Any:
    def no_duplicates(pairs):
        result = {}
        for key, value in pairs:
            if key in result:
                raise _DuplicateKey(key)
            result[key] = value
        return result

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise FileProblem(
            [Problem(shown, "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
        ) from None
    except RecursionError:
        raise FileProblem([Problem(shown, "", "invalid JSON: nested too deeply to read")]) from None
    except _DuplicateKey as exc:
        key = exc.args[0]
        # The hook sees no positions: the second place the key is written is the duplicate.
        places = [m.start() for m in re.finditer(re.escape(json.dumps(key)) + r"\s*:", text)]
        where = f" at line {text.count(chr(10), 0, places[1]) + 1}" if len(places) > 1 else ""
        raise FileProblem([Problem(shown, "", f"invalid JSON{where}: duplicate key {key!r}")]) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise FileProblem([Problem(shown, "", f"invalid JSON: {exc}")]) from None


def _read_python(path: Path, shown: str) -> Any:
    """A ``.py`` config's dict ``config``, or an experiment folder's hparams file's config (experiments.py)."""
    try:
        config, experiment = read_python_config(path, shown)
    except PythonFileError as exc:
        raise FileProblem(exc.problems) from None
    if not isinstance(config, dict):
        raise FileProblem([Problem(shown, "config", f"received {describe(config)}, expected a dict")])
    if experiment is not None:  # run.json records the hyperparameters: plain data, as a config's values
        hparams, problems = plain_data(experiment.hparams, (HPARAMS,), shown)
        if problems:
            raise FileProblem(problems)
        experiment = dataclasses.replace(experiment, hparams=hparams)
    remember(path, experiment)
    return config


_SCALARS = (str, int, float, bool, type(None))
# Limits that keep hostile files from crashing or stalling the loader. Real configs are far from them:
# the resolver (OmegaConf) recurses about ten frames per level, and YAML aliases expand exponentially
# ("billion laughs": nine aliases of nine aliases of ...).
MAX_DEPTH = 32
MAX_VALUES = 100_000


def index_key(text: str) -> int | None:
    """``"12"`` -> 12: a string of ASCII digits that names a list index or an integer key; else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def plain_data(value: Any, path: tuple, shown: str) -> tuple[Any, list[Problem]]:
    """``value`` as plain data (tuples become lists) and what is wrong with it; ``path`` is where it sits in the config."""
    problems: list[Problem] = []
    return _plain(value, path, shown, problems), problems


class _Walk:
    """What ``_plain`` tracks across one tree: the containers on the current path (cycles) and the values seen."""

    def __init__(self) -> None:
        self.open: set[int] = set()
        self.count, self.stopped = 0, False


def _plain(value: Any, path: tuple, shown: str, problems: list[Problem], walk: _Walk | None = None) -> Any:
    """Check that ``value`` is plain data (tuples become lists); record what is not."""
    walk = walk or _Walk()
    if walk.stopped:
        return None
    walk.count += 1
    if walk.count > MAX_VALUES:
        walk.stopped = True
        problems.append(
            Problem(
                shown, "", f"holds more than {MAX_VALUES:,} values (YAML aliases count at every place they are used)"
            )
        )
        return None
    if isinstance(value, (dict, list, tuple)):
        if id(value) in walk.open:
            problems.append(
                Problem(shown, format_key(path), "contains itself (a YAML alias used inside its own anchor)")
            )
            return None
        if len(path) >= MAX_DEPTH:
            walk.stopped = True
            shown_key = format_key(path)
            shown_key = shown_key if len(shown_key) <= 60 else shown_key[:57] + "..."
            problems.append(Problem(shown, shown_key, f"nested more than {MAX_DEPTH} levels deep"))
            return None
        walk.open.add(id(value))
        try:
            return _plain_container(value, path, shown, problems, walk)
        finally:
            walk.open.discard(id(value))
    if isinstance(value, int) and _too_many_digits(value):
        limit = sys.get_int_max_str_digits()
        problems.append(
            Problem(
                shown,
                format_key(path),
                f"received an integer of about {limit:,} digits or more, which Python will not print",
            )
        )
        return None
    if isinstance(value, str) and not encodable(value):
        problems.append(
            Problem(
                shown, format_key(path), f"received {describe(value)}, which holds half of a surrogate pair: not text"
            )
        )
        return None
    if isinstance(value, _SCALARS):
        return value
    problems.append(
        Problem(
            shown,
            format_key(path),
            f"received {describe(value)}; a config holds only str, int, float, bool, None, lists and mappings"
            " (write a class as a dotted path string)",
        )
    )
    return None


def clashing_keys(tree: Any, where) -> list[Problem]:
    """Mappings that hold both an integer key and its string (``5`` and ``"5"``), e.g. merged from a YAML and a JSON file.

    Neither interpolation (OmegaConf) nor a JSON printout can hold both; each file alone was checked by ``read_file``.
    """
    problems: list[Problem] = []

    def walk(value: Any, path: tuple) -> None:
        if isinstance(value, dict):
            both = sorted(k for k in value if isinstance(k, int) and not isinstance(k, bool) and str(k) in value)
            if both:
                problems.append(
                    Problem(
                        where(path),
                        format_key(path),
                        f"holds both {both[0]} and '{both[0]}' as keys (merged from different files?); keep one",
                    )
                )
            for key, child in value.items():
                walk(child, path + (key,))
        elif isinstance(value, list):
            for i, child in enumerate(value):
                walk(child, path + (i,))

    walk(tree, ())
    return problems


def encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: JSON and YAML escapes can produce lone surrogates (``"\\ud800"``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_many_digits(value: int) -> bool:
    """More decimal digits than ``str(value)`` converts (a hexadecimal literal can be that long)."""
    limit = sys.get_int_max_str_digits()
    return bool(limit) and value.bit_length() * 0.30103 >= limit - 1


def _plain_container(value: Any, path: tuple, shown: str, problems: list[Problem], walk: _Walk) -> Any:
    if isinstance(value, dict):
        out = {}
        both = {k for k in value if isinstance(k, int)} & {index_key(k) for k in value if isinstance(k, str)}
        if both:  # 0 and "0" cannot both survive interpolation or a JSON record
            problems.append(
                Problem(shown, format_key(path), f"holds both {min(both)} and '{min(both)}' as keys; keep one")
            )
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                problems.append(
                    Problem(shown, format_key(path), f"keys must be strings or integers, received {describe(key)}")
                )
                continue
            if isinstance(key, str) and not encodable(key):
                problems.append(
                    Problem(
                        shown, format_key(path), f"the key {describe(key)} holds half of a surrogate pair: not text"
                    )
                )
                continue
            out[key] = _plain(item, path + (key,), shown, problems, walk)
        return out
    return [_plain(item, path + (i,), shown, problems, walk) for i, item in enumerate(value)]
