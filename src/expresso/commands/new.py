"""``expresso new NAME``: a project of one's own in one command, which trains as soon as it is written.

The project is rendered from the package's templates (``expresso/templates``):
``common/`` (pyproject.toml, README, .gitignore, the package's datasets.py and
transforms.py, configs for datasets, loggers and a sample profile, a test),
then ``<template>/`` over it (models.py, the models', tasks' and experiments'
configs). A template file's name ends in ``.tmpl``, so no tool reads it as
code of this package; ``package/`` becomes the project's package folder and
``gitignore`` its ``.gitignore``. Placeholders are ``{{key}}``, replaced
literally: the configs hold ``${...}`` interpolations that ``string.Template``
would take for its own.

Configs name the project's classes by dotted path (``demo.models.MLP``):
expresso imports them from the project folder (the one holding
pyproject.toml), so ``expresso train configs/experiments/...`` works before
the project is installed, and after.
"""

from __future__ import annotations

import argparse
import keyword
import sys
from dataclasses import dataclass
from pathlib import Path

from ..version import __version__
from . import UsageError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SUFFIX = ".tmpl"
LAYOUT_COLUMN = 21  # where the descriptions start in the README's layout block
RENAMED = {"package": None, "gitignore": ".gitignore"}  # None: the project's package name


@dataclass(frozen=True)
class Template:
    """What a template trains: its description, the examples the project's test trains (file: run name), its extra."""

    description: str
    examples: dict[str, str]
    extra: str = ""  # torch-expresso[<extra>] the template's configs need
    layout: str = ""  # README lines for folders only this template has


TEMPLATES_BY_NAME = {
    "classification": Template(
        "An MLP that classifies scikit-learn's 8x8 digits",
        {"configs/experiments/mlp.yaml": "mlp", "experiments/00_baseline/hparams.py": "00_baseline-hparams"},
        layout="experiments/         Python experiment folders: `expresso train experiments/00_baseline/hparams.py`\n",
    ),
    "autoencoder": Template(
        "A denoising autoencoder that redraws scikit-learn's 8x8 digits",
        {"configs/experiments/autoencoder.yaml": "autoencoder"},
    ),
    "gan": Template(
        "A conditional GAN that draws scikit-learn's 8x8 digits of a requested class",
        {"configs/experiments/gan.yaml": "gan"},
        extra="plots",  # ImageGrid draws its PNGs with matplotlib
    ),
}


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "new", parents=[common], help="write a new project (package, configs, test) that trains right away"
    )
    parser.add_argument("name", metavar="NAME", help="the project's package name (a Python identifier)")
    parser.add_argument(
        "--template",
        choices=tuple(TEMPLATES_BY_NAME),
        default="classification",
        help="what the project trains on scikit-learn's digits (default: classification)",
    )
    parser.add_argument("--dir", metavar="PATH", help="the folder to write (default: ./NAME); must be absent or empty")
    return parser


def run(args: argparse.Namespace) -> int:
    name = args.name
    if not name.isidentifier() or keyword.iskeyword(name) or not name.isascii():
        raise UsageError(
            f"project name {name!r}: expected a Python identifier (letters, digits, underscores; not a keyword), "
            "as it names the project's package"
        )
    taken = _installed_module(name)
    if taken:
        raise UsageError(
            f"project name {name!r}: an installed module has that name ({taken}); "
            "the project's package would hide it or be hidden by it"
        )
    target = Path(args.dir) if args.dir is not None else Path(name)
    template = TEMPLATES_BY_NAME[args.template]
    files = render(name, args.template)
    try:
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            what = "a file" if not target.is_dir() else "a folder that is not empty"
            raise UsageError(f"{target}: is {what}; expresso new writes into an absent or empty folder")
        for relative, text in files.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except UsageError:
        raise
    except (OSError, ValueError) as exc:  # a folder under a file, a name too long, a full disk, a NUL byte
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{target}: cannot write the project there ({reason})") from None
    first = next(iter(template.examples))
    print(f"written: {target} ({len(files)} files, template {args.template})")
    print(f"next: cd {target} && expresso train {first}")
    return 0


def _installed_module(name: str) -> str | None:
    """Where an importable module named ``name`` lives (a built-in, the standard library, a package), or None."""
    import importlib.util

    if name in sys.builtin_module_names:
        return "built in"
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    # A namespace package (origin None) is any folder of that name on sys.path, such as an empty target folder.
    return spec.origin if spec is not None and spec.origin is not None else None


def requirement() -> str:
    """The expresso releases a new project accepts: this one up to the next minor (0.x) or major version."""
    major, minor, *_ = (int(part) for part in __version__.split(".")[:2] + ["0"])
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={__version__},<{upper}"


def render(name: str, template_name: str) -> dict[str, str]:
    """The project's files (path relative to the project folder: text), ``common/`` overlaid by the template's own."""
    template = TEMPLATES_BY_NAME[template_name]
    extra = f"[{template.extra}]" if template.extra else ""
    values = {
        "name": name,
        "template": template_name,
        "description": template.description,
        "requirement": f"torch-expresso{extra}{requirement()}",
        "examples": "{\n"
        + "".join(f'    "{file}": "{run_name}",\n' for file, run_name in template.examples.items())
        + "}",
        "first": next(iter(template.examples)),
        "layout": template.layout,
        "package_line": f"{name}/".ljust(LAYOUT_COLUMN) if len(name) < LAYOUT_COLUMN - 1 else f"{name}/ ",
    }
    files: dict[str, str] = {}
    for layer in (TEMPLATES / "common", TEMPLATES / template_name):
        for source in sorted(layer.rglob(f"*{SUFFIX}")):
            parts = list(source.relative_to(layer).parts)
            parts[-1] = parts[-1][: -len(SUFFIX)]
            parts = [RENAMED.get(part, part) or name for part in parts]
            files["/".join(parts)] = _fill(source.read_text(encoding="utf-8"), values)
    return files


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text
