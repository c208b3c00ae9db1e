"""The project root from the command line: a config nested deep in its own ``configs/`` still imports the project's package."""

from __future__ import annotations

import re

from cli_runs import finish, one_line_error, start

NESTED = "experiments/tune_lr/large/configs/exp.yaml"
MODELS = """\
class Net:
    def __init__(self, hidden: int = 4):
        self.hidden = hidden
"""


def write_project(root, with_package: bool) -> None:
    files = {
        "pyproject.toml": "[project]\nname = 'tune-lab'\n",
        NESTED: "model: {class: tune_lab.models.Net, hidden: 8}\n",
    }
    if with_package:
        files.update({"tune_lab/__init__.py": "", "tune_lab/models.py": MODELS})
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)


def test_a_config_in_a_nested_configs_folder_imports_the_package_beside_pyproject_toml(tmp_path):
    # Run from outside both projects: the working directory (on sys.path under python -m) must not be what finds the package.
    write_project(tmp_path / "lab", with_package=True)
    write_project(tmp_path / "bare", with_package=False)
    checks = {name: start(["config", "--check", f"{name}/{NESTED}"], tmp_path) for name in ("lab", "bare")}
    good, bad = finish(checks["lab"]), finish(checks["bare"])

    assert good.returncode == 0, good.stderr
    assert "class: tune_lab.models.Net\n  hidden: 8\n" in good.stdout
    expected = (
        f"expresso: error: bare/{NESTED}: model.class: cannot import 'tune_lab.models.Net': no module named 'tune_lab'"
        f" (project root: {(tmp_path / 'bare').resolve()}, the folder holding pyproject.toml; modules are imported from there)"
    )
    # the close-match suggestion, if any, comes from whatever is installed (telnetlib, say): not this test's subject
    assert re.fullmatch(re.escape(expected) + r"(; did you mean \S+\?)?", one_line_error(bad)), one_line_error(bad)
