"""Which profile a run uses: train's -u in the config's project, resume's the one run.json names or -u's beside it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from expresso.commands import tracking
from expresso.commands.tracking import hide, prepare, recorded, redacted, secrets
from expresso.config import ConfigError, load_config
from expresso.config.compose import display


@pytest.fixture
def profiles(tmp_path) -> Path:
    folder = tmp_path / "configs" / "profiles"
    folder.mkdir(parents=True)
    for name, uri in (("alice", "sqlite:////a.db"), ("bob", "sqlite:////b.db")):
        (folder / f"{name}.yaml").write_text(
            f"loggers: {{mlflow: {{tracking_uri: '{uri}'}}}}\nenv: {{TOKEN: {name}}}\n"
        )
    (tmp_path / "configs" / "exp.yaml").write_text("loggers: [csv, mlflow]\n")
    return folder


def test_train_reads_the_profile_from_the_configs_project_and_resume_the_one_its_record_names(profiles):
    config = load_config(profiles.parent / "exp.yaml")
    started = prepare(config, "alice", offline=False)
    assert started.by_index == {1: {"tracking_uri": "sqlite:////a.db"}}
    assert started.record() == {
        "offline": False,
        "profile": {
            "name": "alice",
            "file": str(profiles / "alice.yaml"),
            "loggers": {"mlflow": ["tracking_uri"]},
            "unused": [],
            "env": ["TOKEN"],
        },
    }
    file, offline = recorded({**started.record(), "offline": True})
    assert (file, offline) == (profiles / "alice.yaml", True)
    assert prepare(config, None, offline, file).profile.env == {"TOKEN": "alice"}  # resume: the same profile
    assert prepare(config, "bob", offline, file).profile.env == {"TOKEN": "bob"}  # resume -u bob: beside it
    assert prepare(config, None, False, None).record() == {"offline": False, "profile": None}
    assert recorded({"offline": False, "profile": None}) == (None, False)

    (profiles / "alice.yaml").unlink()
    with pytest.raises(ConfigError) as gone:
        prepare(config, None, offline, file)
    assert str(gone.value) == (
        f"{display(profiles / 'alice.yaml')}: profile not found (the run was started with -u alice; "
        "-u USER takes another from this folder)"
    )


def test_the_secrets_masked_are_those_named_so_and_the_passwords_of_urls(monkeypatch):
    monkeypatch.setattr(tracking, "_hidden", set())  # this process's: put back after the test
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    profile = {
        "comet": {"api_key": "k-123456", "workspace": "team-a"},
        "mlflow": {"tracking_uri": "https://me:pw-98765@mlflow.example.org", "experiment": "digits"},
        "mine": {"auth": {"user": "u-1111", "pass": "p-2222"}},
    }
    assert secrets(profile) == ["k-123456", "pw-98765", "u-1111", "p-2222"]
    assert secrets({"MLFLOW_TRACKING_TOKEN": "t-1", "MLFLOW_TRACKING_USERNAME": "me"}) == ["t-1"]
    hide(secrets(profile) + ["abc"])  # too short to mask: it would mask ordinary words
    assert redacted("401 for key k-123456 at https://me:pw-98765@host (team-a, abc)") == (
        "401 for key *** at https://me:***@host (team-a, abc)"
    )
