"""Every snippet in docs/*.md runs, and shows what it claims (the rules of test_readme.py, for the docs pages).

- ```bash lines that start with `expresso` run from the repository root and
  must exit 0 (`train` shortened by --dev-run, `sweep`'s trials likewise, into a
  scratch runs root); a
  line the README's own command block holds too is left to test_readme.py,
  which runs that block in order (each process imports torch: ~3 s of CPU);
- a page's ```python blocks run in order as one script from the repository
  root (a later block uses what an earlier one defined: one tiny training per
  page) and must succeed; what it prints must be, line for line, the
  `# -> ...` comments of its lines. The pages' scripts run one after another
  in one process (one torch import for all), each in its own namespace;
- a ```yaml block whose first line is `# <path>` must match that file, and a
  ```python block whose first line is `# <path>` must be that file (it is not
  run with the page's script); any other yaml block
  is a piece of a config: it must parse, and its keys must be config
  keys (the root keys, and the settings of `trainer:` and `dataloader:`);
- a ```text block that starts with `$ expresso ...` must be that command's
  output: stdout when it succeeds, stderr (exit status 2) when it fails.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_readme import bash_lines as readme_lines

from expresso.config.schema import ROOT_KEYS, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(kind: str) -> list[tuple[str, str]]:
    return [(page.name, body) for page in PAGES for lang, body in BLOCK.findall(page.read_text()) if lang == kind]


def start(args: list[str], runs_root: Path) -> subprocess.Popen:
    if args[0] == "train":
        args = [*args, "--dev-run", "2", "--runs-root", str(runs_root)]
    elif args[0] == "sweep" and "--check" not in args:  # each trial shortened as --dev-run 2 shortens a run
        args = [*args, "trainer.limit_batches=2", "trainer.max_epochs=1", "--runs-root", str(runs_root)]
    env = {**os.environ, "SLURM_JOB_ID": "docs-test"}  # the SLURM pattern in reliability.md runs as inside a job
    return subprocess.Popen(
        [sys.executable, "-m", "expresso", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def expresso(args: list[str], runs_root: Path) -> subprocess.CompletedProcess:
    return finish(start(args, runs_root))


def commands() -> list[tuple[str, str]]:
    """The pages' `expresso` lines, but those test_readme.py runs already."""
    lines = [
        (page, line.split("#")[0].strip())
        for page, body in blocks("bash")
        for line in body.splitlines()
        if line.strip().startswith("expresso ")
    ]
    return [(page, line) for page, line in lines if line not in readme_lines()]


def test_the_docs_have_pages_with_commands():
    assert PAGES and commands()


@pytest.fixture(scope="module")
def commands_run(tmp_path_factory) -> list[subprocess.CompletedProcess]:
    """Every docs command, started at once (each imports torch), each with its own runs root."""
    started = [start(shlex.split(line)[1:], tmp_path_factory.mktemp("docs-runs")) for _, line in commands()]
    return [finish(process) for process in started]


@pytest.mark.parametrize("index", range(len(commands())), ids=lambda index: str(commands()[index])[:60])
def test_command_runs(commands_run, index):
    page, line = commands()[index]
    result = commands_run[index]
    assert result.returncode == 0, f"{page}: {line}\n{result.stderr}"


@pytest.mark.parametrize(
    "page, body", [b for b in blocks("yaml") if b[1].startswith("# ")], ids=lambda value: str(value)[:60]
)
def test_yaml_snippet_matches_the_file_it_names(page, body):
    first, *rest = body.splitlines()

    def code(lines):
        return [line.split("#")[0].rstrip() for line in lines if line.split("#")[0].strip()]

    assert code(rest) == code((ROOT / first[2:].strip()).read_text().splitlines()), page


def names_a_file(body: str) -> bool:
    """Whether a ```python block is a file shown whole: its first line is ``# <path>.py`` (one word), not a comment."""
    first = body.split("\n", 1)[0]
    return first.startswith("# ") and first.endswith(".py") and " " not in first[2:].strip()


@pytest.mark.parametrize(
    "page, body", [b for b in blocks("python") if names_a_file(b[1])], ids=lambda value: str(value)[:60]
)
def test_python_snippet_is_the_file_it_names(page, body):
    first, *rest = body.splitlines()
    assert rest == (ROOT / first[2:].strip()).read_text().splitlines(), page


@pytest.mark.parametrize(
    "page, body", [b for b in blocks("text") if b[1].startswith("$ expresso")], ids=lambda value: str(value)[:60]
)
def test_shown_output_is_what_the_command_prints(page, body, tmp_path):
    command, *expected = body.rstrip("\n").splitlines()
    result = expresso(shlex.split(command[2:])[1:], tmp_path)
    shown = result.stdout if result.returncode == 0 else result.stderr
    assert result.returncode in (0, 2)
    assert shown.rstrip("\n").splitlines() == expected, page


def python_pages() -> list[tuple[str, str]]:
    """Each page with ```python blocks, and those blocks joined in order into one script."""
    scripts: dict[str, list[str]] = {}
    for page, body in blocks("python"):
        if not names_a_file(body):  # a file shown whole is compared with the file, not run
            scripts.setdefault(page, []).append(body)
    return [(page, "\n\n".join(bodies)) for page, bodies in scripts.items()]


# Runs each page's script in a namespace of its own, its prints captured; reports each page's output and error.
RUNNER = """
import contextlib, io, json, sys, traceback

results = []
for page, script in json.load(sys.stdin):
    printed, error = io.StringIO(), None
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(script, page, "exec"), {"__name__": "__main__"})
    except BaseException:
        error = traceback.format_exc()
    results.append({"stdout": printed.getvalue(), "error": error})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def python_run(tmp_path_factory) -> list[dict]:
    """Every page's script, one after another in one process: torch is imported once.

    Their temporary folders (a page's run folder) go into pytest's, which cleans them up.
    """
    process = subprocess.run(
        [sys.executable, "-c", RUNNER],
        cwd=ROOT,
        input=json.dumps(python_pages()),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(tmp_path_factory.mktemp("docs-python"))},
    )
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.splitlines()[-1])


@pytest.mark.parametrize("index", range(len(python_pages())), ids=lambda index: python_pages()[index][0])
def test_python_snippets_run_and_print_what_they_show(python_run, index):
    page, script = python_pages()[index]
    result = python_run[index]
    assert result["error"] is None, f"{page}\n{result['error']}"
    assert result["stdout"].splitlines() == re.findall(r"# -> (.*)$", script, re.M), page


@pytest.mark.parametrize(
    "page, body", [b for b in blocks("yaml") if not b[1].startswith("# ")], ids=lambda value: str(value)[:60]
)
def test_yaml_piece_is_config_keys(page, body):
    tree = yaml.safe_load(body)
    assert isinstance(tree, dict), page
    assert set(tree) <= {*ROOT_KEYS, "extends"}, f"{page}: {sorted(set(tree) - {*ROOT_KEYS, 'extends'})}"
    for section, cls in SETTINGS.items():
        known = {field.name for field in dataclasses.fields(cls)}
        assert set(tree.get(section) or {}) <= known, f"{page}: {section}: {sorted(set(tree[section]) - known)}"


def cited_tests() -> list[tuple[str, str, str]]:
    """Every `tests/...py::name` a page cites (``::name`` alone continues the previous file)."""
    found = []
    for page in PAGES:
        current = None
        for file, name in re.findall(r"(tests/[\w/]+\.py)?::(\w+)", page.read_text()):
            current = file or current
            found.append((page.name, current, name))
    return found


@pytest.mark.parametrize("page, file, name", cited_tests(), ids=lambda value: str(value)[:70])
def test_every_test_a_page_cites_exists(page, file, name):
    tree = ast.parse((ROOT / file).read_text())
    assert name in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}, (
        f"{page} cites {file}::{name}"
    )
