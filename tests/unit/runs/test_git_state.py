"""git_state reads the repository without writing it: a user's git command at that moment finds no index.lock of ours."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from expresso.runs.record import git_state

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(folder, *args):
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True).stdout


def test_reading_the_state_leaves_the_index_untouched_where_git_status_would_rewrite_it(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("print(1)\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    index = tmp_path / ".git" / "index"

    def stale_stat() -> int:
        """Touch the file (same content, new mtime) and date the index back: git status would now refresh it."""
        os.utime(tmp_path / "train.py", ns=(2_000_000_000 * 10**9, 2_000_000_000 * 10**9))
        os.utime(index, ns=(1_000_000_000 * 10**9, 1_000_000_000 * 10**9))
        return index.stat().st_mtime_ns

    before = stale_stat()
    state = git_state(tmp_path)
    assert state == {"commit": _git(tmp_path, "rev-parse", "HEAD").strip(), "dirty": False}
    assert index.stat().st_mtime_ns == before  # not rewritten: no index.lock taken
    before = stale_stat()
    _git(tmp_path, "status", "--porcelain")
    assert index.stat().st_mtime_ns != before  # what a plain `git status` does (why the flag matters)
