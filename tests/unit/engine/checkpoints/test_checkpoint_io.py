"""engine/checkpoints/io.py: what ``load_checkpoint`` refuses (and never runs)."""

from __future__ import annotations

import warnings
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


def test_bytes_that_open_like_a_pickle_of_another_protocol_are_refused_with_no_warning_beside_the_refusal(tmp_path):
    """One line for a damaged file: torch's warning about the protocol (here 84) would print above it."""
    odd = tmp_path / "random.ckpt"
    odd.write_bytes(b"\x80\x54" + bytes(range(200)))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match=r"random\.ckpt: not a readable checkpoint \("):
            load_checkpoint(odd)
    assert said == []
