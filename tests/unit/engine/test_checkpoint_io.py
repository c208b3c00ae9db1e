"""checkpoint_io: what ``load_checkpoint`` refuses (and never runs), and background writes: the bytes of the moment,
follow-ups after the file exists, errors surfaced."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from expresso.engine.checkpoint_io import BackgroundWriter, CheckpointError, load_checkpoint, save_atomic


def test_the_file_holds_the_values_of_the_moment_it_was_submitted(tmp_path):
    weight = torch.zeros(1000)
    writer = BackgroundWriter()
    writer.submit({"models": {"m": {"w": weight}}}, tmp_path / "a.ckpt")
    weight += 1  # training goes on while the file is written
    writer.wait()
    assert torch.equal(load_checkpoint(tmp_path / "a.ckpt")["models"]["m"]["w"], torch.zeros(1000))


def test_then_runs_once_the_file_is_on_disk(tmp_path):
    seen = []
    writer = BackgroundWriter()
    writer.submit({"x": 1}, tmp_path / "a.ckpt", then=lambda: seen.append((tmp_path / "a.ckpt").is_file()))
    writer.wait()
    assert seen == [True]


def test_a_failed_write_is_raised_at_the_next_wait_and_leaves_no_file(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    writer = BackgroundWriter()
    writer.submit({"x": 1}, tmp_path / "blocker" / "a.ckpt")
    with pytest.raises(OSError):
        writer.wait()
    writer.wait()  # reported once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_a_second_submit_waits_for_the_first_so_the_order_on_disk_is_kept(tmp_path):
    writer = BackgroundWriter()
    for value in range(5):
        writer.submit({"step": value}, tmp_path / "last.ckpt")
    writer.wait()
    assert load_checkpoint(tmp_path / "last.ckpt")["step"] == 4


def test_the_background_file_is_byte_for_byte_the_synchronous_one(tmp_path):
    payload = {"models": {"m": {"w": torch.arange(10.0)}}, "loop": {"step": 3}}
    save_atomic(payload, tmp_path / "sync.ckpt")
    writer = BackgroundWriter()
    writer.submit(payload, tmp_path / "background.ckpt")
    writer.wait()
    assert (tmp_path / "sync.ckpt").read_bytes() == (tmp_path / "background.ckpt").read_bytes()


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
