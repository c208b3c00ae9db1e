"""engine/checkpoints/manifest.py: two records, so one damaged file verifies nothing less, and a kill anywhere keeps both true."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
from pathlib import Path

import pytest
import torch

from expresso.engine.checkpoints import manifest
from expresso.engine.checkpoints.errors import CheckpointError
from expresso.engine.checkpoints.io import save_atomic
from expresso.runs.atomic import atomic_copy
from expresso.runs.folder import CheckpointFolder

RECORDS = ("manifest.json", "manifest.copy.json")


def checkpoint(folder: CheckpointFolder, step: int, best: bool, grouped: bool = False) -> None:
    """What snapshot.write and the Checkpoint callback do for one checkpoint: last.ckpt rotated, best.ckpt linked.

    ``grouped``: as the writer thread does it, the names recorded in one write after the links (``names_at_end``).
    """
    payload = {
        "models": {"m": {"w": torch.full((4,), float(step))}},
        "loop": {"epoch": 0, "batch_index": 0, "step": step},
    }
    rotated = folder.last.exists()
    entry = save_atomic(
        payload,
        folder.last,
        before_replace=lambda entry: manifest.about_to_write(folder.path, {**entry, "step": step}),
        previous=folder.previous if rotated else None,
    )
    with manifest.names_at_end() if grouped else contextlib.nullcontext():
        manifest.written(folder.path, folder.LAST, {**entry, "step": step}, rotated=rotated)
        if best:
            atomic_copy(folder.last, folder.best, durable=True, sync_folder=False)
            manifest.alias(folder.path, folder.BEST, folder.LAST)


@pytest.mark.parametrize("grouped", [False, True], ids=["a-write-per-name", "names-in-one-write"])
def test_a_kill_between_any_two_renames_leaves_every_checkpoint_matching_an_entry_of_each_record_alone(
    tmp_path, monkeypatch, grouped
):
    folder = CheckpointFolder(tmp_path / "checkpoints")
    folder.path.mkdir()
    states: list[dict[str, bytes]] = []  # the folder after each rename: what a kill at that instant leaves
    real_replace = os.replace

    def replace_and_keep(source, target):
        real_replace(source, target)
        states.append({p.name: p.read_bytes() for p in folder.path.iterdir() if not p.name.startswith(".")})

    monkeypatch.setattr(os, "replace", replace_and_keep)
    for step in range(1, 6):
        checkpoint(folder, step, best=step % 2 == 1, grouped=grouped)
    monkeypatch.setattr(os, "replace", real_replace)

    # Each checkpoint: 2 records, previous.ckpt (from the second on), last.ckpt, 2 records; each best.ckpt: its link,
    # and 2 records of its own unless the names are recorded in one write.
    assert len(states) == 5 * 6 - 1 + 3 * (1 if grouped else 3)
    for number, state in enumerate(states):
        for kept in RECORDS:  # the other record garbled: this one alone must vouch for every checkpoint on disk
            check = tmp_path / f"state-{number}-{kept}"
            check.mkdir()
            for name, data in state.items():
                (check / name).write_bytes(b"\x00garbage" if name in RECORDS and name != kept else data)
            for ckpt in check.glob("*.ckpt"):
                assert manifest.entry_of(ckpt) is not None, (number, kept, ckpt.name, sorted(state))
                manifest.verify(ckpt)


@pytest.fixture
def written(tmp_path) -> CheckpointFolder:
    folder = CheckpointFolder(tmp_path / "checkpoints")
    folder.path.mkdir()
    for step in (1, 2):
        checkpoint(folder, step, best=step == 1)
    return folder


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_garbled_manifest_is_said_once_and_its_copy_still_catches_a_damaged_checkpoint_then_repairs_it(
    written, caplog
):
    written.manifest.write_bytes(b'{"files": \x00')
    flip_one_byte(written.last)
    with caplog.at_level(logging.WARNING, logger="expresso"):
        with pytest.raises(CheckpointError) as caught:
            manifest.verify(written.last)
        manifest.verify(written.best)
        assert manifest.resume_point(written.path, log=lambda message: None) == written.previous
    assert str(caught.value).startswith(f"{written.last}: damaged: ")
    assert str(caught.value).endswith(
        f"matching no checkpoint in {written.manifest_copy} (recorded: {written.previous.stat().st_size} bytes, sha256 {json.loads(written.manifest_copy.read_text())['files']['last.ckpt']['sha256'][:12]})"
    )
    assert [r.getMessage() for r in caplog.records] == [
        f"expresso: warning: {written.manifest}: damaged (not JSON); the checkpoints are verified against"
        f" {written.manifest_copy}, and both are rewritten at the next write"
    ]
    # resume_point (the writer's) rewrote the manifest from its copy
    assert written.manifest.read_text() == written.manifest_copy.read_text()
    assert json.loads(written.manifest.read_text())["files"]["previous.ckpt"]["step"] == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "missing"),
        (b"[1, 2]", 'damaged (not {"files": {...}, "recent": [...]})'),
        (b'{"files": {"last.ckpt": {"size": "12"}}, "recent": []}', "damaged (1 malformed entry)"),
    ],
)
def test_a_missing_or_malformed_manifest_beside_a_sound_copy_is_said_and_verification_goes_on(
    written, caplog, content, problem
):
    if content is None:
        written.manifest.unlink()
    else:
        written.manifest.write_bytes(content)
    flip_one_byte(written.best)
    with caplog.at_level(logging.WARNING, logger="expresso"), pytest.raises(CheckpointError, match="damaged: "):
        manifest.verify(written.best)
    assert [r.getMessage() for r in caplog.records] == [
        f"expresso: warning: {written.manifest}: {problem}; the checkpoints are verified against"
        f" {written.manifest_copy}, and both are rewritten at the next write"
    ]


def test_both_records_garbled_is_said_and_the_next_write_rewrites_both(written, caplog):
    for record in (written.manifest, written.manifest_copy):
        record.write_bytes(b"\xff\xfe")
    with caplog.at_level(logging.WARNING, logger="expresso"):
        manifest.verify(written.last)  # nothing left to compare with
    assert [r.getMessage() for r in caplog.records] == [
        f"expresso: warning: {written.manifest}: damaged (not JSON); {written.manifest_copy}: damaged (not JSON);"
        f" the checkpoints in {written.path} cannot be verified"
    ]
    checkpoint(written, 3, best=False)
    assert json.loads(written.manifest.read_text()) == json.loads(written.manifest_copy.read_text())
    assert json.loads(written.manifest.read_text())["files"]["last.ckpt"]["step"] == 3


def test_a_folder_with_no_record_or_the_manifest_alone_is_not_warned_about(written, caplog):
    written.manifest_copy.unlink()  # a folder written before the copy existed: verified by the manifest, silently
    flip_one_byte(written.last)
    with caplog.at_level(logging.WARNING, logger="expresso"):
        with pytest.raises(CheckpointError, match="damaged: "):
            manifest.verify(written.last)
        written.manifest.unlink()  # checkpoints copied out of their folder: nothing to verify against, nothing to say
        manifest.verify(written.last)
    assert caplog.records == []


def test_names_at_end_records_a_checkpoints_names_in_one_write_and_reads_back_what_waits(tmp_path, monkeypatch):
    folder = CheckpointFolder(tmp_path / "checkpoints")
    folder.path.mkdir()
    checkpoint(folder, 1, best=True)
    writes = []
    monkeypatch.setattr(manifest, "atomic_write", lambda path, text, **_: writes.append((Path(path).name, text)))
    entry = {"size": 1, "sha256": "f" * 64, "step": 2}
    with manifest.names_at_end():
        manifest.written(folder.path, folder.LAST, entry, rotated=True)
        manifest.alias(folder.path, folder.BEST, folder.LAST)  # reads the name written just above, not yet on disk
        manifest.forget(folder.path, folder.PREVIOUS)
        assert writes == []
    assert [name for name, _ in writes] == list(RECORDS)
    files = json.loads(writes[0][1])["files"]
    assert files == {"last.ckpt": entry, "best.ckpt": entry}


def test_names_at_end_records_the_names_of_files_in_place_when_its_block_raises(tmp_path, monkeypatch, caplog):
    folder = CheckpointFolder(tmp_path / "checkpoints")
    folder.path.mkdir()
    checkpoint(folder, 1, best=False)
    entry = {"size": 1, "sha256": "f" * 64, "step": 2}
    with pytest.raises(RuntimeError, match="a link failed"), manifest.names_at_end():
        manifest.written(folder.path, folder.LAST, entry, rotated=True)
        raise RuntimeError("a link failed")
    assert json.loads(folder.manifest.read_text())["files"]["last.ckpt"] == entry

    def full(path, text, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(manifest, "atomic_write", full)  # the records cannot be written either
    with caplog.at_level(logging.WARNING, logger="expresso"), pytest.raises(RuntimeError, match="a link failed"):
        with manifest.names_at_end():
            manifest.forget(folder.path, folder.LAST)
            raise RuntimeError("a link failed")
    assert [r.getMessage() for r in caplog.records] == [
        "expresso: warning: could not record the checkpoint names: [Errno 28] No space left on device"
    ]
    with pytest.raises(OSError, match="No space left"), manifest.names_at_end():  # no error of its own: it is raised
        manifest.forget(folder.path, folder.LAST)
