"""``expresso``'s entry point: the command modules it composes, bad input as one line (exit 2), and a stdout nobody reads."""

from __future__ import annotations

import argparse
import os
import sys

import pytest

from expresso.cli import COMMANDS, _build_parser, _stdout_closed, main
from expresso.commands import config, evaluate, export, graph, new, plot, predict, report, resume, runs, sweep, train
from expresso.errors import BadInput


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

    monkeypatch.setattr(runs, "run", broken)
    with pytest.raises(BrokenPipeError):
        main(["runs", str(tmp_path)])


class Refused(BadInput):
    """Bad input of a kind cli.py has never heard of: the base alone decides."""


def test_bad_input_raised_by_a_command_exits_2_with_one_line_and_no_traceback(monkeypatch, capfd, tmp_path):
    def refuse(args):
        raise Refused(f"{args.root}: not what was expected")

    monkeypatch.setattr(runs, "run", refuse)
    assert main(["runs", str(tmp_path)]) == 2
    assert capfd.readouterr().err == f"expresso: error: {tmp_path}: not what was expected\n"


def test_with_debug_bad_input_shows_its_traceback_and_any_other_error_always_does(monkeypatch, tmp_path):
    def refuse(args):
        raise Refused("shown in full")

    monkeypatch.setattr(runs, "run", refuse)
    with pytest.raises(Refused, match="^shown in full$"):
        main(["runs", str(tmp_path), "--debug"])

    def bug(args):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(runs, "run", bug)
    with pytest.raises(ValueError, match="^a bug, not bad input$"):
        main(["runs", str(tmp_path)])


def test_each_command_is_a_module_of_expresso_commands_with_its_parser_and_its_handler():
    (subparsers,) = [action for action in _build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    assert {name: parser.get_default("handler") for name, parser in subparsers.choices.items()} == {
        "config": config.run,
        "graph": graph.run,
        "train": train.run,
        "sweep": sweep.run,
        "resume": resume.run,
        "eval": evaluate.run,
        "predict": predict.run,
        "export": export.run,
        "runs": runs.run,
        "plot": plot.run,
        "report": report.run,
        "new": new.run,
    }
    for module in COMMANDS:  # each adds its one subcommand and returns its parser
        fresh = argparse.ArgumentParser().add_subparsers()
        parser = module.add_parser(fresh, argparse.ArgumentParser(add_help=False))
        assert list(fresh.choices.values()) == [parser], module.__name__


EXIT_PROBE = """
import atexit, gc, sys
# registered before main: runs after main's exit handler, and sees what it left
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0, "cycle finalized:", finalized))
finalized = []
class Cycle:
    def __del__(self):
        finalized.append(True)
from expresso.cli import main
main(["--version"])
handlers = atexit._ncallbacks()
main(["--version"])  # a second main in the process registers nothing more
print("handlers added by a second main:", atexit._ncallbacks() - handlers)
gc.disable()  # no collection before exit's: the cycle below is left to the exit handler
cycle = Cycle(); cycle.me = cycle; del cycle  # garbage in a reference cycle, as a command may leave behind
"""


def test_the_command_collects_once_at_exit_then_freezes_what_is_left_for_the_shutdown():
    """The interpreter's shutdown collections skip the frozen heap (cli._collect_once_at_exit); cycles are finalized first."""
    import subprocess

    result = subprocess.run([sys.executable, "-c", EXIT_PROBE], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-2:] == [
        "handlers added by a second main: 0",
        "frozen at exit: True cycle finalized: [True]",
    ], result.stdout
