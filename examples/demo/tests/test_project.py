"""The project's own checks: its datasets, and every example trained end to end through expresso's command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_digits

ROOT = Path(__file__).resolve().parents[1]
# Each example, and the name its run folder gets.
EXAMPLES = {
    "configs/experiments/mlp.yaml": "mlp",
    "experiments/00_baseline/hparams.py": "00_baseline-hparams",
}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_the_example_trains_a_few_batches(example, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "expresso", "train", example, "--dev-run", "2", "--runs-root", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    [run_dir] = (tmp_path / EXAMPLES[example]).iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_the_splits_hold_every_digit_once():
    from demo.datasets import Digits

    splits = [Digits(split=split) for split in ("train", "val", "test")]
    assert [len(split) for split in splits] == [1257, 270, 270]
    assert sorted(sum((split.digits.tolist() for split in splits), [])) == sorted(load_digits().target.tolist())
