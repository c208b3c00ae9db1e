"""Profiles (-u USER) and --offline through the CLI: a planted secret reaches the logger that takes it and no file,
tracker record or output line (a tracker's error quoting it is masked); resume keeps the profile and the offline
mode; a bad profile is one line, no run folder.

The stand-in for a hosted tracker (``KeyedTracker``) writes the sha256 of the key it received, never the key, so
a test can tell the key arrived without the key's bytes being anywhere.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest
from cli_runs import finish, one_line_error, only_run_dir, read_record, start, together

SECRET = "planted-secret-5b0e91d2c7"
TRACKER = '''
"""A hosted tracker's stand-in: an API key, a token read from the environment and an offline mode, whose hashes it
records; with quote_key, it fails with the key in its message. The key is required: the profile gives it."""

import hashlib
import json
import os
from pathlib import Path

from expresso.loggers import Logger


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


class KeyedTracker(Logger):
    def __init__(self, run_dir, api_key: str, offline: bool = False, quote_key: bool = False):
        self.path, self.api_key, self.offline = Path(run_dir) / "keyed.jsonl", api_key, offline
        self.quote_key = quote_key  # fail as a careless client does: with the key in the message

    def log_metrics(self, metrics, step, epoch):
        if self.quote_key:
            raise RuntimeError(f"upload refused for key {self.api_key}")

    def log_hyperparams(self, params):
        record = {
            "key": sha256(self.api_key),
            "token": sha256(os.environ.get("KEYED_TOKEN", "")),
            "offline": self.offline,
            "name": params["name"],
        }
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\\n")
'''
KEYED = "profile_trackers.py:KeyedTracker"
PROFILES = {
    "planted": f"""\
        loggers:
          {KEYED}: {{api_key: {SECRET}}}
          mlflow: {{tracking_uri: "https://user:{SECRET}@mlflow.example.org"}}  # not in these runs: unused
          tensorboard: {{log_dir: /tmp/{SECRET}}}
        env: {{KEYED_TOKEN: {SECRET}}}
        """,
    "wrong_option": f"""\
        loggers:
          {KEYED}: {{api_key: {SECRET}, workspace: {SECRET}}}
        """,
    "wrong_section": """\
        logger: {}
        """,
}
KEYED_RUN = ["configs/experiments/tiny.yaml", f"loggers=[csv, {{class: {KEYED}}}]"]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def holding(folder: Path, secret: str) -> list[Path]:
    """Every file under ``folder`` whose bytes contain ``secret`` (checkpoints, databases, event files alike)."""
    return [path for path in folder.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()]


@pytest.fixture(scope="module")
def with_profiles(project) -> Path:
    """The session's project, with the stand-in tracker and the profiles (their names are this module's own)."""
    (project / "profile_trackers.py").write_text(TRACKER)
    for name, text in PROFILES.items():
        (project / "configs" / "profiles" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return project


# make test-slow (CI's time limit): six CLI processes, ~16 s. In CI, tests/unit/config/test_logger_options.py and
# tests/unit/commands/test_tracking.py cover which logger gets which option, every refusal and the masking.
@pytest.mark.slow
def test_a_planted_secret_reaches_its_logger_and_no_file_or_output_and_resume_keeps_the_profile(
    with_profiles, tmp_path
):
    runs_root, refused_root, leaky_root = tmp_path / "runs", tmp_path / "refused", tmp_path / "leaky"
    refused = ["--runs-root", refused_root]
    results = together(
        {
            "trained": (
                [
                    "train",
                    *KEYED_RUN,
                    "trainer.max_epochs=1",
                    "trainer.limit_batches=2",
                    "-u",
                    "planted",
                    "--offline",
                    "--runs-root",
                    runs_root,
                ],
                None,
            ),
            "leaky": (
                [
                    "train",
                    "configs/experiments/tiny.yaml",
                    f"loggers=[csv, {{class: {KEYED}, quote_key: true}}]",
                    "-u",
                    "planted",
                    "--runs-root",
                    leaky_root,
                    "--dev-run",
                    "1",
                ],
                None,
            ),
            "missing": (["train", *KEYED_RUN, "-u", "nobody", *refused], None),
            "wrong-option": (["train", *KEYED_RUN, "--profile", "wrong_option", *refused], None),
            "wrong-section": (["config", *KEYED_RUN, "-u", "wrong_section"], None),
        },
        cwd=with_profiles,
    )
    trained = results["trained"]
    assert trained.returncode == 0, trained.stderr
    run_dir = only_run_dir(runs_root, "tiny")
    resumed = finish(start(["resume", run_dir, "trainer.max_epochs=2"], with_profiles))  # no -u: run.json names it
    assert resumed.returncode == 0, resumed.stderr

    # the key and the environment's token reached the tracker, offline, in the run and in its resume
    received = {"key": sha256(SECRET), "token": sha256(SECRET), "offline": True, "name": "tiny"}
    assert [json.loads(line) for line in (run_dir / "keyed.jsonl").read_text().splitlines()] == [received, received]
    record = read_record(run_dir)
    assert record["offline"] is True
    assert record["profile"] == {
        "name": "planted",
        "file": str(with_profiles / "configs" / "profiles" / "planted.yaml"),
        "loggers": {KEYED: ["api_key"]},
        "unused": ["mlflow", "tensorboard"],
        "env": ["KEYED_TOKEN"],
    }
    assert "profile" not in record["resumes"][0] and "offline" not in record["resumes"][0]
    # ... and nowhere else: not in config.yaml, run.json, log.txt, metrics.csv, the checkpoints, nor any output
    assert holding(runs_root, SECRET) == []
    assert not any(SECRET in text for text in (trained.stdout, trained.stderr, resumed.stdout, resumed.stderr))
    assert (run_dir / "log.txt").read_text().count("final metrics") == 2  # the log that was searched is the run's

    # a tracker whose error quotes the key: the run fails, and says why with the key masked, everywhere
    leaky = results["leaky"]
    assert leaky.returncode == 1
    assert leaky.stderr.splitlines()[-1] == "RuntimeError: upload refused for key ***"
    failed = only_run_dir(leaky_root, "tiny")
    assert read_record(failed)["error"] == {"type": "RuntimeError", "message": "upload refused for key ***"}
    assert "RuntimeError: upload refused for key ***" in (failed / "log.txt").read_text()
    assert holding(leaky_root, SECRET) == [] and SECRET not in leaky.stdout + leaky.stderr

    profiles = Path("configs") / "profiles"
    assert one_line_error(results["missing"]) == (
        f"expresso: error: {profiles / 'nobody.yaml'}: profile not found (-u nobody)"
    )
    assert one_line_error(results["wrong-option"]) == (
        f"expresso: error: {profiles / 'wrong_option.yaml'}: loggers.{KEYED}.workspace: not an argument of {KEYED}"
        " (it takes: run_dir, api_key, offline, quote_key)"
    )
    assert one_line_error(results["wrong-section"]) == (
        f"expresso: error: {profiles / 'wrong_section.yaml'}: logger: unknown key (a profile holds: loggers, env);"
        " did you mean 'loggers'?"
    )
    assert not refused_root.exists()  # refused before any run folder


# make test-slow: it needs the tensorboard and mlflow extras, which it installs; the test above covers the mechanism
# in CI with the stand-in tracker
@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy:DeprecationWarning"
)  # MLflow's store, as test_trackers
def test_tensorboard_and_mlflow_take_the_profiles_options_and_hold_no_trace_of_its_secret(with_profiles, tmp_path):
    import mlflow
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs_root, board = tmp_path / "runs", tmp_path / "board"
    (with_profiles / "configs" / "profiles" / "tracked.yaml").write_text(
        textwrap.dedent(
            f"""\
            loggers:
              tensorboard: {{log_dir: {board}}}
              mlflow: {{experiment: from-profile}}
              {KEYED}: {{api_key: {SECRET}}}
            env: {{MLFLOW_TRACKING_TOKEN: {SECRET}, MLFLOW_TRACKING_PASSWORD: {SECRET}, KEYED_TOKEN: {SECRET}}}
            """
        )
    )
    loggers = f"loggers=[csv, tensorboard, mlflow, {{class: {KEYED}}}]"
    result = finish(
        start(
            [
                "train",
                "configs/experiments/tiny.yaml",
                loggers,
                "--dev-run",
                "2",
                "-u",
                "tracked",
                "--runs-root",
                runs_root,
            ],
            with_profiles,
        )
    )
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(runs_root, "tiny")

    # the options were applied: TensorBoard wrote into the profile's folder, MLflow into the profile's experiment
    assert not (run_dir / "tensorboard").exists()
    events = EventAccumulator(str(board))
    events.Reload()
    assert [event.step for event in events.Scalars("val/acc")] == [2]
    client = mlflow.MlflowClient(f"sqlite:///{runs_root / 'mlflow.db'}")
    assert sorted(experiment.name for experiment in client.search_experiments()) == ["Default", "from-profile"]
    [run] = client.search_runs([client.get_experiment_by_name("from-profile").experiment_id])
    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    assert [json.loads(line)["key"] for line in (run_dir / "keyed.jsonl").read_text().splitlines()] == [sha256(SECRET)]

    # the secret: in no file of the run folder, the MLflow store and artifacts, the event files, nor the output
    assert sorted(path.name for path in runs_root.iterdir()) == ["mlartifacts", "mlflow.db", "mlflow.db.lock", "tiny"]
    assert holding(runs_root, SECRET) == [] and holding(board, SECRET) == []
    assert SECRET not in json.dumps([run.data.params, run.data.tags])
    assert SECRET not in result.stdout + result.stderr
