"""Profiles and --offline: which logger gets which option, and every problem named by file and key, never by value."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from expresso.config import ConfigError
from expresso.config.compose import display
from expresso.config.logger_options import logger_options
from expresso.config.profiles import Profile, load_profile

SECRET = "s3cr3t-7f1c9e"
EXAMPLE_PROFILES = Path(__file__).resolve().parents[3] / "examples" / "digits" / "configs" / "profiles"
HOSTED = '''
from expresso.loggers import Logger


class Hosted(Logger):
    """Takes what a hosted tracker takes: a key, a workspace, an offline mode."""

    def __init__(self, api_key: str | None = None, workspace: str = "", offline: bool = False) -> None:
        self.api_key, self.workspace, self.offline = api_key, workspace, offline
'''


@pytest.fixture
def hosted(tmp_path) -> str:
    (tmp_path / "trackers.py").write_text(HOSTED)
    return f"{tmp_path}/trackers.py:Hosted"


def profile_file(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def options(loggers: list, profile: Profile | None, offline: bool = False):
    return logger_options({"loggers": loggers}, lambda path: "exp.yaml", profile, offline)


def problems(loggers: list, profile: Profile | None, offline: bool = False) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        options(loggers, profile, offline)
    return [str(problem) for problem in caught.value.problems]


def test_a_profile_supplies_the_loggers_a_run_lists_by_short_name_or_class_and_leaves_the_others_unused(hosted):
    profile = Profile(
        "alice",
        Path("profiles/alice.yaml"),
        loggers={
            "mlflow": {"tracking_uri": "sqlite:////data/mlflow.db"},
            "tensorboard": {"log_dir": "/data/tb"},
            hosted: {"api_key": SECRET},
        },
        env={"MLFLOW_TRACKING_TOKEN": SECRET},
    )
    # mlflow by its exported class path, the hosted tracker by its file path: both matched by the class they name
    loggers = ["csv", {"class": "expresso.loggers.MLflowLogger", "experiment": "e"}, {"class": hosted}]
    found = options(loggers, profile)
    assert found.by_index == {1: {"tracking_uri": "sqlite:////data/mlflow.db"}, 2: {"api_key": SECRET}}
    assert found.record(profile) == {
        "name": "alice",
        "file": "profiles/alice.yaml",
        "loggers": {"mlflow": ["tracking_uri"], hosted: ["api_key"]},
        "unused": ["tensorboard"],
        "env": ["MLFLOW_TRACKING_TOKEN"],
    }
    assert SECRET not in str(found.record(profile))
    assert options(loggers, None).by_index == {}


def test_offline_sets_offline_where_a_logger_takes_it_over_the_config_and_the_profile(hosted):
    profile = Profile("alice", Path("alice.yaml"), loggers={hosted: {"offline": False, "api_key": SECRET}})
    loggers = ["csv", "tensorboard", {"class": hosted, "workspace": "w"}, "mlflow"]
    found = options(loggers, profile, offline=True)
    assert found.by_index == {2: {"api_key": SECRET, "offline": True}}
    assert found.offline == [hosted]
    assert options(["csv", {"class": hosted, "offline": False}], None, offline=True).by_index == {1: {"offline": True}}


def test_offline_refuses_a_logger_that_can_only_send_to_a_server_and_keeps_local_stores():
    remote = {"class": "expresso.loggers.MLflowLogger", "tracking_uri": "https://mlflow.example.org"}
    assert problems(["csv", remote], None, offline=True) == [
        "command line: --offline: the expresso.loggers.MLflowLogger logger (loggers.1) sends to a server "
        "(https://..., its tracking_uri from the config) and has no offline mode; drop --offline, or its "
        "tracking_uri to use its local store"
    ]
    profile = Profile("alice", Path("alice.yaml"), loggers={"mlflow": {"tracking_uri": f"https://{SECRET}@host"}})
    [line] = problems(["mlflow"], profile, offline=True)
    assert "(https://..., its tracking_uri from the profile)" in line and SECRET not in line
    local = {"class": "expresso.loggers.MLflowLogger", "tracking_uri": "sqlite:////data/mlflow.db"}
    assert options(["csv", "mlflow", local], None, offline=True).by_index == {}


def test_what_a_profile_cannot_give_is_refused_naming_its_file_and_key_never_the_value(hosted):
    profile = Profile(
        "alice",
        Path("profiles/alice.yaml"),
        loggers={
            hosted: {"api_key": 7, "token": SECRET, "workspace": SECRET, "class": SECRET},
            "mlfow": {"tracking_uri": SECRET},
            "csv": {"path": SECRET},
            "tensorboard": {"log_dir": SECRET},
        },
    )
    found = problems(["csv", "tensorboard", {"class": hosted, "workspace": "team"}], profile)
    shown = display(Path("profiles/alice.yaml"))
    assert found == [
        f"{shown}: loggers.{hosted}.api_key: received a value of type int, expected a string or null ({hosted})",
        f"{shown}: loggers.{hosted}.token: not an argument of {hosted} (it takes: api_key, workspace, offline)",
        f"{shown}: loggers.{hosted}.class: a profile gives a logger's options, not its 'class' (the config's)",
        f"{shown}: loggers.{hosted}.workspace: also set by the config (exp.yaml: loggers.2.workspace): set it in one place",
        f"{shown}: loggers.mlfow: unknown logger (a profile names one as the config does: csv, tensorboard, mlflow, "
        "clearml, sacred, comet, wandb, or its class); did you mean 'mlflow'?",
        f"{shown}: loggers.csv: the csv logger (metrics.csv) takes no options",
    ]
    assert not any(SECRET in line for line in found)


def test_a_missing_or_malformed_profile_file_is_refused_naming_it(tmp_path):
    folder = tmp_path / "profiles"
    profile_file(folder, "alice", "loggers: {}\n")
    with pytest.raises(ConfigError) as missing:
        load_profile("alicia", folder)
    assert (
        str(missing.value)
        == f"{display(folder / 'alicia.yaml')}: profile not found (-u alicia); did you mean -u alice?"
    )
    with pytest.raises(ConfigError) as outside:
        load_profile("../alice", folder)
    assert str(outside.value).startswith("command line: --profile: received '../alice', expected a profile name")

    path = profile_file(
        folder, "bad", f"logger: {{}}\nloggers: {{mlflow: [{SECRET}]}}\nenv: {{TOKEN: 12345, 'NOT A NAME': x}}\n"
    )
    with pytest.raises(ConfigError) as bad:
        load_profile("bad", folder)
    shown = display(path)
    assert [str(problem) for problem in bad.value.problems] == [
        f"{shown}: logger: unknown key (a profile holds: loggers, env); did you mean 'loggers'?",
        f"{shown}: loggers.mlflow: received a value of type list, expected a mapping of option -> value",
        f"{shown}: env.TOKEN: received a value of type int, expected text (quote it)",
        f"{shown}: env.NOT A NAME: expected an environment variable's name (letters, digits, _)",
    ]
    assert SECRET not in str(bad.value) and "12345" not in str(bad.value)


def test_the_committed_sample_is_a_profile_that_supplies_nothing():
    sample = load_profile("sample", EXAMPLE_PROFILES)
    assert sample.env == {}
    assert sample.loggers == {"mlflow": {}, "tensorboard": {}}
    assert options(["csv", "tensorboard", "mlflow"], sample).by_index == {}
