"""runs/lock.py: one writer per run folder, with real processes (the lock is the kernel's: only processes can test it)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from expresso.runs import lock
from expresso.runs.folder import RunFolder, RunFolderError
from expresso.runs.lock import RunFolderBusy, hold, remove_if_unused

SRC = str(Path(__file__).resolve().parents[3] / "src")

# A process that holds the folder's lock, says so, and waits to be killed; with "fork", a child that outlives it.
HOLDER = textwrap.dedent(
    """\
    import os, sys, time
    from expresso.runs.folder import RunFolder
    from expresso.runs.lock import hold
    with hold(RunFolder(sys.argv[1]), create=True):
        child = os.fork() if sys.argv[2] == "fork" else None
        if child == 0:  # past the fork's handlers (lock.py closes the lock's copy there): say so
            print("child", flush=True)
            time.sleep(60)
            os._exit(0)
        print(child, flush=True)
        time.sleep(60)
    """
)
TAKER = "import sys\nfrom expresso.runs.folder import RunFolder\nfrom expresso.runs.lock import hold\nwith hold(RunFolder(sys.argv[1])):\n    print('took it')\n"


def python(code: str, *args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, text=True, **kwargs)


def take(folder: RunFolder) -> subprocess.CompletedProcess:
    process = python(TAKER, folder.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_a_second_process_is_refused_naming_the_holders_pid_and_host_and_the_holder_may_hold_again(tmp_path):
    folder = RunFolder(tmp_path / "run")
    with hold(folder, create=True), hold(folder):  # re-entrant: train hands its held folder to resume
        line = json.loads(folder.lock.read_text())
        assert (line["pid"], line["host"]) == (os.getpid(), socket.gethostname())
        refused = take(folder)
        assert refused.returncode == 1 and refused.stdout == ""
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith(
            f"expresso.runs.lock.RunFolderBusy: {folder.path}: another process writes this run folder "
            f"(pid {os.getpid()} on host {socket.gethostname()} since {line['since']}); wait for it to end"
        ), refused.stderr
    assert take(folder).stdout == "took it\n"  # released at the block's end


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock_not_even_through_a_forked_child(tmp_path):
    folder = RunFolder(tmp_path / "run")
    holder = python(HOLDER, folder.path, "fork", stdout=subprocess.PIPE)
    assert holder.stdout is not None
    # The parent's line (the child's pid) and the child's, in either order: both past the fork, so a kill now is
    # a kill after the child's handlers ran, not one racing them on a busy machine.
    lines = {holder.stdout.readline().strip(), holder.stdout.readline().strip()}
    child = int(next(line for line in lines if line != "child"))
    try:
        with pytest.raises(RunFolderBusy, match=f"pid {holder.pid} on host"):
            with hold(folder):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        with hold(folder):  # the child (a data-loader worker, say) still runs, but holds nothing
            assert json.loads(folder.lock.read_text())["pid"] == os.getpid()
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_refused_writer_names_the_holder_not_the_dead_process_whose_line_the_file_still_holds(tmp_path):
    """A killed run being resumed: its line stays in the lock file until the new holder, which has locked, writes its own."""
    dead = python("pass")
    dead.wait(timeout=60)
    path = tmp_path / RunFolder.LOCK
    stale = {"pid": dead.pid, "host": socket.gethostname(), "since": "2026-01-01T00:00:00+0000"}
    path.write_text(json.dumps(stale) + "\n")
    assert lock._holder(path) == "another process writes this run folder (its pid is not recorded yet)"

    live = {"pid": os.getpid(), "host": socket.gethostname(), "since": "2026-01-01T00:00:01+0000"}
    writer = threading.Timer(3 * lock.READ_PAUSE, lambda: path.write_text(json.dumps(live) + "\n"))
    path.write_text(json.dumps(stale) + "\n")
    writer.start()
    try:
        assert lock._holder(path) == (
            f"another process writes this run folder (pid {os.getpid()} on host {socket.gethostname()} "
            "since 2026-01-01T00:00:01+0000)"
        )
    finally:
        writer.join()
    elsewhere = {**stale, "host": "another-host"}  # another host's pid cannot be checked from here: it is believed
    path.write_text(json.dumps(elsewhere) + "\n")
    assert f"(pid {dead.pid} on host another-host since" in lock._holder(path)


def test_a_folder_that_holds_only_its_lock_is_removed_after_a_failed_start_and_one_with_a_run_is_kept(tmp_path):
    empty, started = RunFolder(tmp_path / "empty"), RunFolder(tmp_path / "started")
    for folder in (empty, started):
        with hold(folder, create=True):
            if folder is started:
                folder.config.write_text("name: x\n")
            remove_if_unused(folder)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["started"]
    assert sorted(path.name for path in started.path.iterdir()) == [RunFolder.CONFIG, RunFolder.LOCK]


def test_a_missing_folder_is_refused_in_one_line_when_it_is_not_to_be_created(tmp_path):
    with pytest.raises(
        RunFolderError,
        match=f"^{tmp_path / 'gone' / RunFolder.LOCK}: cannot open the run folder's lock \\(No such file or directory\\)$",
    ):
        with hold(RunFolder(tmp_path / "gone")):
            pass
