"""The run folder's file names are spelled in one module: runs/folder.py. Code anywhere else asks RunFolder.

A test rather than a habit: a new ``run_dir / "metrics.csv"`` in a command
or a callback fails here, naming the file and the line. Docstrings and
comments may mention the names; string literals in code (messages included:
they build the name from the constant) may not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src" / "expresso"
OWNER = SRC / "runs" / "folder.py"
NAMES = re.compile(
    r"config\.yaml|run\.json|metrics\.csv|curves\.png|log\.txt|last\.ckpt|best\.ckpt|previous\.ckpt|manifest\.json|manifest\.copy\.json"
    r"|mlflow\.db|mlartifacts|^checkpoints$|checkpoints/|/checkpoints"
)


def literals_naming_run_files(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string constant in ``source`` that names a run-folder file, docstrings excepted."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and NAMES.search(node.value)
    )


def test_no_module_but_the_run_folders_spells_a_run_folder_file_name():
    found = [
        f"{path.relative_to(SRC.parent)}:{line}: {text!r}"
        for path in sorted(SRC.rglob("*.py"))
        if path != OWNER
        for line, text in literals_naming_run_files(path.read_text())
    ]
    assert found == []


def test_the_check_sees_paths_messages_and_f_strings_but_not_docstrings_or_comments():
    source = '''
"""Writes metrics.csv."""
def f(run_dir, which):
    """Reads run.json."""
    # checkpoints/last.ckpt
    a = run_dir / "checkpoints" / "best.ckpt"
    b = f"{run_dir}/checkpoints/{which}.ckpt"
    log("saving previous.ckpt")
    return run_dir / "log.txt", "see the checkpoints folder"
'''
    assert literals_naming_run_files(source) == [
        (6, "best.ckpt"),
        (6, "checkpoints"),
        (7, "/checkpoints/"),
        (8, "saving previous.ckpt"),
        (9, "log.txt"),
    ]
    assert literals_naming_run_files(OWNER.read_text()) != []  # the owner does spell them: the check can see them
