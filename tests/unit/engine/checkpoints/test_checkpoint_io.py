"""engine/checkpoints/io.py: what ``load_checkpoint`` refuses (and never runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from expresso.engine.checkpoints.errors import CheckpointError
from expresso.engine.checkpoints.io import load_checkpoint


def test_a_missing_file_or_a_foreign_pickle_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError) as missing:
        load_checkpoint(tmp_path / "nope.ckpt")
    assert str(missing.value) == f"{tmp_path / 'nope.ckpt'}: checkpoint not found"

    foreign = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(foreign)
    assert str(caught.value) == f"{foreign}: not an expresso checkpoint (no 'expresso-checkpoint' marker)"


class _RunsCode:
    """Unpickling this would create a file: what a malicious checkpoint does."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path):
    evil, target = tmp_path / "evil.ckpt", tmp_path / "pwned"
    torch.save({"format": "expresso-checkpoint", "models": {}, "payload": _RunsCode(target)}, evil)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(evil)
    assert (
        str(caught.value)
        == f"{evil}: not a readable checkpoint (it holds objects other than tensors and plain data, which expresso never unpickles)"
    )
    assert not target.exists()
