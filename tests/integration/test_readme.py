"""Every snippet in README.md runs, and shows what it claims.

- ```python blocks run from the repository root and must succeed;
- ```bash lines that start with `expresso` run and must exit 0 (`make`
  lines are the setup commands themselves: CI runs `make test`);
- a ```yaml block whose first line is `# <path>` must match that file;
- a ```text block of `$ expresso ...` followed by its output must reproduce
  that output (stderr) with exit status 2.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def _blocks(kind: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [body for lang, body in BLOCK.findall(text) if lang == kind]


def _expresso(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "expresso", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_readme_has_snippets_of_every_kind():
    assert all(_blocks(kind) for kind in ("bash", "yaml", "python", "text"))


@pytest.mark.parametrize("body", _blocks("python"))
def test_python_snippet_runs(body):
    result = subprocess.run([sys.executable, "-c", body], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "a snippet that prints nothing shows nothing"


def _expresso_lines() -> list[str]:
    lines = []
    for body in _blocks("bash"):
        for line in body.splitlines():
            command = line.split("#")[0].strip()
            if command.startswith("expresso "):
                lines.append(command)
    return lines


@pytest.mark.parametrize("command", _expresso_lines())
def test_bash_expresso_line_succeeds(command):
    result = _expresso(shlex.split(command)[1:])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("name: ")


@pytest.mark.parametrize("body", [b for b in _blocks("yaml") if b.startswith("# ")])
def test_yaml_snippet_matches_the_file_it_names(body):
    first, *rest = body.splitlines()
    path = ROOT / first[2:].strip()

    def code(lines):
        return [line.split("#")[0].rstrip() for line in lines if line.split("#")[0].strip()]

    assert code(rest) == code(path.read_text().splitlines())


@pytest.mark.parametrize("body", [b for b in _blocks("text") if b.startswith("$ expresso")])
def test_error_example_is_what_expresso_prints(body):
    command, *expected = body.strip().splitlines()
    result = _expresso(shlex.split(command[2:])[1:])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == expected
