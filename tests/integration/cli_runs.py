"""What the run-command tests share: the test project's experiments, running ``python -m expresso``, reading run folders.

Used by the fixtures in conftest.py and by test_cli_train.py and
test_cli_eval_predict.py. Every command is a real process on real files.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "digits"
FIXTURES = Path(__file__).parent / "fixtures"
FROZEN_CLOCK = FIXTURES / "frozen_clock"  # a sitecustomize that freezes time.strftime
FROZEN_TIME = 1_700_000_000  # 2023-11-14, 22:13:20 UTC
EXAMPLE_EXPERIMENTS = {
    "digits_mlp.yaml": "digits-mlp",
    "digits_cnn.yaml": "digits-cnn",
    "digits_gru.json": "digits-gru",
    "digits_mlp_parity.py": "digits-mlp-parity",
}
# The multi-model examples (config/wiring.py): stages, a GAN, interleaved pipelines.
GRAPH_EXAMPLES = {
    "digits_ae_classifier.yaml": "digits-ae-classifier",
    "digits_gan.yaml": "digits-gan",
    "digits_semi_supervised.yaml": "digits-semi-supervised",
}
STEPS_PER_EPOCH = 10  # ceil(1257 training images / 128)
EXPERIMENTS = {
    "tiny.yaml": """\
        extends: digits_mlp.yaml
        name: tiny
        optimizer: {lr: 3.0e-3}
        # mode min: best.ckpt keeps the first (worst) epoch, so best and last differ.
        trainer: {max_epochs: 2, batch_size: 128, mode: min}
        """,
    "hooked.yaml": """\
        extends: tiny.yaml
        name: hooked
        predict: {class: fixtures/probes.py:scaled_prediction, _partial_: true}
        """,
    "bad_key.yaml": """\
        extends: tiny.yaml
        trainer: {max_epoch: 3}
        """,
    "bad_class.yaml": """\
        extends: tiny.yaml
        optimizer: {class: torch.optim.AdamX, lr: 0.001}
        """,
    "bad_dataset_argument.yaml": """\
        extends: tiny.yaml
        dataset: {val_fraction: 0.9}
        """,
}


# -- processes -----------------------------------------------------------------------------------------
def start(args: list, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "expresso", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def expresso(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return finish(start(list(args), cwd, env))


def together(commands: dict[str, tuple[list, dict | None]], cwd: Path) -> dict[str, subprocess.CompletedProcess]:
    """Run several commands at once; their results by name."""
    processes = {name: start(args, cwd, env) for name, (args, env) in commands.items()}
    return {name: finish(process) for name, process in processes.items()}


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single ``expresso: error: ...`` line a bad input must produce (exit status 2)."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("expresso: error: "), result.stderr
    return lines[0]


# -- run folders ------------------------------------------------------------------------------------------
def run_dirs(runs_root: Path, name: str) -> list[Path]:
    return sorted(path for path in (runs_root / name).glob("*") if path.is_dir())


def only_run_dir(runs_root: Path, name: str) -> Path:
    found = run_dirs(runs_root, name)
    assert len(found) == 1, found
    return found[0]


def read_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def read_config(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text())


def read_history(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.csv as one (step, value) series per column, in the order the rows were written: what trackers must hold."""
    series: dict[str, list[tuple[int, float]]] = {}
    for row in read_history(run_dir):
        for key, value in row.items():
            if key not in ("epoch", "step") and value != "":
                series.setdefault(key, []).append((int(row["step"]), float(value)))
    return series


def flattened(tree, leaf=lambda value: value, prefix: str = "") -> dict:
    """The config as trackers list it: dotted key paths (list items by index), each value as ``leaf`` makes it (an
    empty list or mapping stays a value)."""
    if not tree or not isinstance(tree, (dict, list)):
        return {prefix: leaf(tree)}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    flat: dict = {}
    for key, value in items:
        flat.update(flattened(value, leaf, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def checkpoint_model(run_dir: Path, checkpoint: str = "best") -> torch.nn.Module:
    """The run's model built from its config.yaml, with a checkpoint's weights, in evaluation mode: for computing by hand what a command reports."""
    from expresso import instantiate, load_config

    model = instantiate(load_config(run_dir / "config.yaml", check=True)["model"])
    model.load_state_dict(load(run_dir / "checkpoints" / f"{checkpoint}.ckpt")["models"]["model"])
    return model.eval()


def weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def printed_metrics(stdout: str) -> dict[str, str]:
    """``  name  value`` lines of a train's or resume's final printout."""
    return dict(re.findall(r"^  (\S+)\s+(\S+)$", stdout, re.MULTILINE))


def table(stdout: str) -> list[list[str]]:
    """A printed table's rows, cells split on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


def git_commit(folder: Path) -> str | None:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def tiny_run(trained, lr: float) -> Path:
    """The run of tiny.yaml under the shared root whose config has this learning rate."""
    for name in ("base", "lr-variant"):
        assert trained["results"][name].returncode == 0, trained["results"][name].stderr
    found = [
        run_dir
        for run_dir in run_dirs(trained["roots"] / "table", "tiny")
        if read_config(run_dir)["optimizer"]["lr"] == lr
    ]
    assert len(found) == 1, found
    return found[0]
