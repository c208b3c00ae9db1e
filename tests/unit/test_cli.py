"""``expresso``'s entry point: a stdout nobody reads ends a command quietly; any other broken pipe is an error."""

from __future__ import annotations

import os
import sys

import pytest

import expresso.commands.runs
from expresso.cli import _stdout_closed, main


def test_a_pipe_whose_reader_closed_is_a_closed_stdout_and_an_open_one_is_not(monkeypatch):
    read, write = os.pipe()
    with os.fdopen(write, "w") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        assert not _stdout_closed()
        os.close(read)
        assert _stdout_closed()


def test_a_broken_pipe_while_stdout_is_open_is_raised_not_swallowed(monkeypatch, capfd, tmp_path):
    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")  # say, from a data-loading worker's pipe

    monkeypatch.setattr(expresso.commands.runs, "runs", broken)
    with pytest.raises(BrokenPipeError):
        main(["runs", str(tmp_path)])
