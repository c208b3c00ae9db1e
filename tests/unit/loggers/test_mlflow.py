"""The mlflow logger in a real SQLite store: a fit that raised is FAILED or KILLED there, never RUNNING; a resumed
fit continues the same MLflow run, and a setting it changed is a tag (MLflow params cannot change)."""

import pytest
from test_base import Raises, fit

from expresso.callbacks.preemption import Preempted
from expresso.loggers import MLflowLogger

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
]  # make test-slow: it needs the mlflow extra, which it installs


def test_a_fit_that_raised_ends_its_mlflow_run_failed_or_killed_and_a_resumed_one_continues_it(tmp_path):
    import mlflow

    runs_root = tmp_path / "runs"
    config = {"name": "ends", "optimizer": {"lr": 0.1}}
    loggers = []
    for index, error in enumerate([RuntimeError("boom"), Preempted(15, "last.ckpt"), KeyboardInterrupt()]):
        loggers.append(MLflowLogger())
        with pytest.raises(type(error)):
            fit(loggers[-1], Raises(error), epochs=1, config=config, run_dir=runs_root / "ends" / f"run{index}")
    client = mlflow.MlflowClient(f"sqlite:///{runs_root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ends").experiment_id
    runs = client.search_runs([experiment])
    assert sorted((run.info.run_name, run.info.status) for run in runs) == [
        ("run0", "FAILED"),
        ("run1", "KILLED"),
        ("run2", "KILLED"),
    ]

    resumed = MLflowLogger()
    resumed.load_state_dict(loggers[1].state_dict())  # what the checkpoint of the preempted run carries
    fit(resumed, epochs=1, config={"name": "ends", "optimizer": {"lr": 0.05}}, run_dir=runs_root / "ends" / "run1")
    [run] = [run for run in client.search_runs([experiment]) if run.info.run_name == "run1"]
    assert run.info.run_id == resumed.run_id == loggers[1].run_id
    assert run.info.status == "FINISHED"
    assert run.data.params == {"name": "ends", "optimizer.lr": "0.1"}
    assert run.data.tags["resumed.optimizer.lr"] == "0.05"
    assert len(client.search_runs([experiment])) == 3


def test_a_resume_sends_again_the_rows_its_checkpoint_had_unconfirmed_that_the_store_lacks_and_no_other(tmp_path):
    """Rows go to MLflow asynchronously: a process killed with rows still queued leaves them in its checkpoint only."""
    import mlflow

    runs_root = tmp_path / "runs"
    first = MLflowLogger()
    fit(first, epochs=1, config={"name": "queued"}, run_dir=runs_root / "ends" / "run")
    client = mlflow.MlflowClient(f"sqlite:///{runs_root / 'mlflow.db'}")
    held = {key: [(m.step, m.value) for m in client.get_metric_history(first.run_id, key)] for key in ("train/loss",)}
    [(last_step, _)] = held["train/loss"]  # one epoch of two steps: its row at step 2

    checkpoint = first.state_dict()
    assert checkpoint["unconfirmed"] == []  # the fit's end waited for every row
    checkpoint["unconfirmed"] = [
        ["train/loss", 9.0, 1, last_step],  # the store holds this step: not sent twice
        ["queued/lost", 1.5, 1, 1],  # never reached the store: sent again
        ["queued/lost", 2.5, 1, 2],
        ["queued/lost", 3.5, 1, 3],  # past the checkpoint's step: the resumed run logs it itself
    ]
    resumed = MLflowLogger()
    resumed.load_state_dict(checkpoint)
    resumed._client, resumed._logged_through = client, {"train/loss": last_step}
    resumed._send_again(step=2)
    assert [(m.step, m.value) for m in client.get_metric_history(first.run_id, "train/loss")] == held["train/loss"]
    assert sorted((m.step, m.value) for m in client.get_metric_history(first.run_id, "queued/lost")) == [
        (1, 1.5),
        (2, 2.5),
    ]
    assert resumed._logged_through["queued/lost"] == 2
