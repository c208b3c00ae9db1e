"""The clearml logger's offline session, in process: a fit that raised carries ``status:failed`` or
``status:interrupted`` (an offline session keeps no status of its own), a resumed fit continues the same task, and
the fit's own SIGTERM handler and excepthook stay in charge while ClearML's task is open."""

import json
import os
import signal
import sys

import pytest
from test_base import Raises, fit

from expresso.callbacks.preemption import Preempted
from expresso.engine import Callback
from expresso.loggers import ClearMLLogger

# ClearML's bundled config parser calls pyparsing's old names: theirs to change.
pytestmark = [
    pytest.mark.slow,  # make test-slow: it needs the clearml extra, which it installs
    pytest.mark.filterwarnings("ignore::DeprecationWarning:clearml.utilities.pyhocon.config_parser"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyparsing.util"),
]


class SeesHooks(Callback):
    """What the process's SIGTERM handler and excepthook are while the fit runs (after every logger's start)."""

    order = 10_000

    def on_epoch_end(self, state):
        self.seen = (signal.getsignal(signal.SIGTERM), sys.excepthook)


def session(run_dir, task_id):
    return json.loads((run_dir / "clearml" / "offline" / task_id / "task.json").read_text())


ENDS = {"name": "ends", "optimizer": {"lr": 0.1}}


@pytest.fixture(autouse=True)
def environment_kept():
    """ClearML sets process-wide variables (CLEARML_OFFLINE_MODE...): the CLI processes later tests start inherit
    this process's environment, so it is put back as it was."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


def test_an_offline_session_carries_how_the_fit_ended_and_a_resumed_fit_continues_its_task(tmp_path, monkeypatch):
    monkeypatch.delenv("CLEARML_OFFLINE_MODE", raising=False)  # Task.set_offline sets it: gone after the test
    handler = lambda signum, frame: None  # noqa: E731
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        loggers, seen = [], SeesHooks()
        for index, error in enumerate([RuntimeError("boom"), Preempted(15, "last.ckpt"), KeyboardInterrupt()]):
            loggers.append(ClearMLLogger())
            with pytest.raises(type(error)):
                fit(loggers[-1], Raises(error), epochs=1, config=ENDS, run_dir=tmp_path / f"run{index}")
        assert [session(tmp_path / f"run{index}", logger.task_id)["tags"] for index, logger in enumerate(loggers)] == [
            ["status:failed"],
            ["status:interrupted"],
            ["status:interrupted"],
        ]

        resumed = ClearMLLogger()
        resumed.load_state_dict(loggers[1].state_dict())  # what the checkpoint of the preempted run carries
        fit(resumed, seen, epochs=1, config=ENDS, run_dir=tmp_path / "run1")
        assert seen.seen == (handler, sys.excepthook)
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert resumed.task_id == loggers[1].task_id
    assert [path.name for path in (tmp_path / "run1" / "clearml" / "offline").iterdir() if path.is_dir()] == [
        resumed.task_id
    ]
    task = session(tmp_path / "run1", resumed.task_id)
    assert (task["project_name"], task["name"], task["tags"]) == ("ends", "run1", ["status:completed"])
    assert {key: entry["value"] for key, entry in task["hyperparams"]["General"].items()} == {
        "name": "ends",
        "optimizer.lr": "0.1",
    }
