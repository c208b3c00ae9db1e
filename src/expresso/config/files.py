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

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, describe, format_key

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


def _with_fixed_resolvers(base: type) -> type:
    """A subclass of a PyYAML loader/dumper with our implicit resolvers.

    Loader and dumper must agree, or a string such as ``"1e3"`` would be
    written unquoted and read back as a float.
    """
    cls = type(f"Expresso{base.__name__}", (base,), {})
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
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Dumper = _with_fixed_resolvers(yaml.SafeDumper)


def parse_yaml(text: str) -> Any:
    """Parse YAML text in expresso's dialect (used for files and override values)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader


def dump_yaml(tree: Any) -> str:
    return yaml.dump(tree, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)


class FileProblem(Exception):
    """A file that cannot be read into plain data; carries the problems found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))


def read_file(path: Path, shown: str) -> Any:
    """Read ``path`` into plain data; ``shown`` is how the file is named in messages."""
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise FileProblem([Problem(shown, "", f"unsupported config file type {suffix!r}; expected one of {', '.join(EXTENSIONS)}")])
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
        raise FileProblem([Problem(shown, "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]) from None
    except _DuplicateKey as exc:
        key = exc.args[0]
        # The hook sees no positions: the second place the key is written is the duplicate.
        places = [m.start() for m in re.finditer(re.escape(json.dumps(key)) + r"\s*:", text)]
        where = f" at line {text.count(chr(10), 0, places[1]) + 1}" if len(places) > 1 else ""
        raise FileProblem([Problem(shown, "", f"invalid JSON{where}: duplicate key {key!r}")]) from None


def _read_python(path: Path, shown: str) -> Any:
    import runpy

    try:
        namespace = runpy.run_path(str(path), run_name="__expresso_config__")
    except SyntaxError as exc:
        raise FileProblem([Problem(shown, "", f"invalid Python at line {exc.lineno}: {exc.msg}")]) from None
    except Exception as exc:  # the user's code failed: report it, do not crash
        raise FileProblem([Problem(shown, "", f"running the file raised {type(exc).__name__}: {exc}")]) from None
    if "config" not in namespace:
        raise FileProblem([Problem(shown, "", "a Python config must define a dict named `config`; none is defined")])
    config = namespace["config"]
    if not isinstance(config, dict):
        raise FileProblem([Problem(shown, "config", f"received {describe(config)}, expected a dict")])
    return config


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any, path: tuple, shown: str, problems: list[Problem]) -> Any:
    """Check that ``value`` is plain data (tuples become lists); record what is not."""
    if isinstance(value, dict):
        out = {}
        both = {k for k in value if isinstance(k, int)} & {int(k) for k in value if isinstance(k, str) and k.isdigit()}
        if both:  # 0 and "0" cannot both survive interpolation or a JSON record
            problems.append(Problem(shown, format_key(path), f"holds both {min(both)} and '{min(both)}' as keys; keep one"))
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                problems.append(Problem(shown, format_key(path), f"keys must be strings or integers, received {describe(key)}"))
                continue
            out[key] = _plain(item, path + (key,), shown, problems)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item, path + (i,), shown, problems) for i, item in enumerate(value)]
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
