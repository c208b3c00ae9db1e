"""Background checkpoint writes: the bytes of the moment, follow-ups after the file exists, errors surfaced."""

from __future__ import annotations

import pytest
import torch

from expresso.engine.checkpoint_io import BackgroundWriter, load_checkpoint, save_atomic


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
