"""runs/atomic.py, the one atomic writer: the old file survives any failure, no temporary file stays, durable fsyncs."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from expresso.runs.atomic import (
    _temporary_name,
    atomic_copy,
    atomic_file,
    atomic_write,
    remove_temporaries,
    wait_for_syncs,
)

SRC = Path(__file__).resolve().parents[3] / "src"


def test_a_write_that_fails_midway_for_want_of_space_leaves_the_old_file_whole_and_no_temporary_file(tmp_path):
    # A real failure of the filesystem, halfway through the bytes: a file size limit of 64 KiB (RLIMIT_FSIZE, what
    # the reliability test uses for a full disk), set in a child process so this one keeps its own limits.
    target = tmp_path / "run.json"
    target.write_text("the old record\n")
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path.insert(0, {str(SRC)!r})
        from expresso.runs.atomic import atomic_write
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
        try:
            atomic_write({str(target)!r}, b"x" * (1024 * 1024), durable=True)
        except OSError as exc:
            print(exc.errno)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(errno.EFBIG)
    assert target.read_text() == "the old record\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.json"]


def test_an_interrupt_in_the_middle_of_a_streamed_write_leaves_the_old_file_whole_and_no_temporary_file(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_file(target, durable=True) as handle:
        handle.write(b"half of the new")
        assert sorted(path.name for path in tmp_path.iterdir()) != ["last.ckpt"]  # the temporary file, beside it
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.ckpt"]


def test_a_failing_before_replace_hook_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"old")

    def refuse() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"), atomic_file(target, durable=False, before_replace=refuse) as f:
        f.write(b"new")
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.ckpt"]


def _spy_on_fsync(monkeypatch, target: Path) -> list[tuple[str, bytes]]:
    """Record each fsync (of a folder or a file, and what ``target`` held at that moment), then do it for real."""
    calls: list[tuple[str, bytes]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append((kind, target.read_bytes() if target.exists() else b""))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


@pytest.mark.parametrize(
    "durability, fsyncs",
    [
        ({"durable": True}, [("file", b"old"), ("folder", b"new")]),  # the file before the rename, the folder after
        ({"durable": True, "sync_folder": False}, [("file", b"old")]),  # the manifest's choice
        ({"durable": False}, []),
        ({"durable": False, "sync_folder": True}, []),
    ],
)
def test_durable_fsyncs_the_file_before_the_rename_and_the_folder_after_it_unless_told_not_to(
    tmp_path, monkeypatch, durability, fsyncs
):
    target = tmp_path / "config.yaml"
    target.write_bytes(b"old")
    calls = _spy_on_fsync(monkeypatch, target)
    atomic_write(target, "new", **durability)
    assert calls == fsyncs
    assert target.read_bytes() == b"new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.yaml"]


def test_later_renames_at_once_and_fsyncs_the_file_then_the_folder_on_another_thread_before_wait_returns(
    tmp_path, monkeypatch
):
    """A checkpoint's fsyncs leave the training thread: the new file is in place at once, durable once waited for."""
    import threading

    target = tmp_path / "last.ckpt"
    target.write_bytes(b"old")
    calls = _spy_on_fsync(monkeypatch, target)
    threads: list[str] = []
    spied = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (threads.append(threading.current_thread().name), spied(fd))[1])
    atomic_write(target, b"new", durable=True, later=True)
    assert target.read_bytes() == b"new"  # renamed on this thread, before its fsyncs are known to be done
    wait_for_syncs()
    assert calls == [("file", b"new"), ("folder", b"new")]  # the bytes, then the name
    assert len(threads) == 2 and all(name.startswith("expresso-fsync") for name in threads)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.ckpt"]


def test_a_background_fsync_that_fails_is_raised_by_the_next_wait_and_the_next_checkpoint_write_says_so(
    tmp_path, monkeypatch
):
    from expresso.engine.checkpoints.errors import CheckpointWriteError
    from expresso.engine.checkpoints.io import save_atomic

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    atomic_write(tmp_path / "a.ckpt", b"new", durable=True, later=True)
    with pytest.raises(OSError, match="Input/output error"):
        wait_for_syncs()
    wait_for_syncs()  # raised once: waiting again finds nothing pending
    atomic_write(tmp_path / "a.ckpt", b"newer", durable=True, later=True)
    last = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointWriteError) as raised:
        save_atomic({"models": {}}, last)
    assert str(raised.value) == f"{last}: the previous checkpoint could not be made durable (Input/output error)"
    assert not last.exists()


def test_a_process_killed_inside_its_background_fsync_leaves_the_new_file_whole(tmp_path):
    """SIGKILL (the fault-point hook) at the background thread's fsync: the rename was done, the bytes are the OS's."""
    log = tmp_path / "steps.log"
    child = textwrap.dedent(
        f"""\
        import sys
        sys.path.insert(0, {str(SRC)!r})
        from expresso.runs.atomic import atomic_write, wait_for_syncs
        atomic_write({str(tmp_path / "last.ckpt")!r}, b"new" * 1000, durable=True, later=True)
        wait_for_syncs()
        """
    )
    (tmp_path / "last.ckpt").write_bytes(b"old")
    env = {**os.environ, "EXPRESSO_TEST_FS_STEPS": f"3:{log}"}  # 1 written, 2 renamed, 3 fsynced (background)
    result = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == -9, result.stderr
    assert log.read_text().split("\n")[:3] == ["1 last.ckpt: written", "2 last.ckpt: renamed", "3 last.ckpt: fsynced"]
    assert (tmp_path / "last.ckpt").read_bytes() == b"new" * 1000
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.ckpt", "steps.log"]


def test_text_is_written_as_utf8_and_the_file_gets_the_permissions_of_any_new_file(tmp_path):
    atomic_write(tmp_path / "a" / "config.yaml", "name: café\n", durable=False)  # the folder is created
    (tmp_path / "plain").write_text("")
    assert (tmp_path / "a" / "config.yaml").read_bytes() == "name: café\n".encode()
    assert stat.S_IMODE((tmp_path / "a" / "config.yaml").stat().st_mode) == stat.S_IMODE(
        (tmp_path / "plain").stat().st_mode
    )


def test_a_copy_is_a_link_that_keeps_the_old_contents_when_the_source_is_replaced(tmp_path):
    last, best = tmp_path / "last.ckpt", tmp_path / "best.ckpt"
    atomic_write(last, b"epoch 1", durable=False)
    atomic_copy(last, best, durable=True)
    assert best.stat().st_ino == last.stat().st_ino  # a hard link: no second write
    atomic_write(last, b"epoch 2", durable=False)
    assert (best.read_bytes(), last.read_bytes()) == (b"epoch 1", b"epoch 2")
    atomic_copy(last, best, durable=False)  # over an existing copy
    assert best.read_bytes() == b"epoch 2"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_a_copy_onto_a_link_of_the_same_file_leaves_no_temporary_link(tmp_path):
    """rename() of two links to one file does nothing: the temporary link stayed (found by the kill-anywhere test)."""
    last, previous = tmp_path / "last.ckpt", tmp_path / "previous.ckpt"
    atomic_write(last, b"step 8", durable=False)
    atomic_copy(last, previous, durable=True)  # killed here, before last.ckpt was replaced: one file, two names
    atomic_copy(last, previous, durable=True)  # the resumed run's next checkpoint
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.ckpt", "previous.ckpt"]
    assert previous.read_bytes() == b"step 8"


def test_remove_temporaries_deletes_what_a_killed_write_leaves_and_nothing_else(tmp_path):
    left = [_temporary_name(tmp_path / "last.ckpt"), tmp_path / ".run.json.0123abcd.tmp"]
    kept = [
        tmp_path / name for name in (".notes.tmp", "x.0123abcd.tmp", ".x.0123ABCD.tmp", ".x.0123abc.tmp", "last.ckpt")
    ]
    for path in [*left, *kept]:
        path.write_text("")
    (tmp_path / ".folder.0123abcd.tmp").mkdir()  # not a file the writer makes
    assert sorted(remove_temporaries(tmp_path)) == sorted(left)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(p.name for p in kept), ".folder.0123abcd.tmp"])
    assert remove_temporaries(tmp_path / "missing") == []
