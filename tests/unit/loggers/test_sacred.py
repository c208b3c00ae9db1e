"""The sacred logger's FileStorageObserver, in process: a fit that raised is FAILED (with its traceback) or
INTERRUPTED in run.json, never RUNNING; a resumed fit continues the same Sacred run, in the same folder."""

import json

import pytest
from test_base import Raises, fit

from expresso.callbacks.preemption import Preempted
from expresso.loggers import SacredLogger

pytestmark = pytest.mark.slow  # make test-slow: it needs the sacred extra, which it installs


def record(run_dir):
    return json.loads((run_dir / "sacred" / "1" / "run.json").read_text())


def test_a_fit_that_raised_ends_its_sacred_run_failed_or_interrupted_and_a_resumed_one_continues_it(tmp_path):
    config = {"name": "ends", "optimizer": {"lr": 0.1}}
    loggers = []
    for index, error in enumerate([RuntimeError("boom"), Preempted(15, "last.ckpt"), KeyboardInterrupt()]):
        loggers.append(SacredLogger())
        with pytest.raises(type(error)):
            fit(loggers[-1], Raises(error), epochs=1, config=config, run_dir=tmp_path / f"run{index}")
    records = [record(tmp_path / f"run{index}") for index in range(3)]
    assert [entry["status"] for entry in records] == ["FAILED", "INTERRUPTED", "INTERRUPTED"]
    assert records[0]["fail_trace"][-1] == "RuntimeError: boom\n"
    assert [logger.run_id for logger in loggers] == ["1", "1", "1"]  # one Sacred run in each run folder

    resumed = SacredLogger()
    resumed.load_state_dict(loggers[1].state_dict())  # what the checkpoint of the preempted run carries
    fit(resumed, epochs=1, config={"name": "ends", "optimizer": {"lr": 0.05}}, run_dir=tmp_path / "run1")
    assert sorted(path.name for path in (tmp_path / "run1" / "sacred").iterdir()) == ["1"]
    continued = record(tmp_path / "run1")
    assert (continued["status"], continued["start_time"]) == ("COMPLETED", records[1]["start_time"])
    # the settings the run continues with (Sacred's config is one dict, not a log of values)
    assert json.loads((tmp_path / "run1" / "sacred" / "1" / "config.json").read_text()) == {
        "name": "ends",
        "optimizer": {"lr": 0.05},
    }
    metrics = json.loads((tmp_path / "run1" / "sacred" / "1" / "metrics.json").read_text())
    assert {name: entry["steps"] for name, entry in metrics.items()} == {"train/loss": [2]}
