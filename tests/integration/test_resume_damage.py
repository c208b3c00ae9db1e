"""Damaged run-folder files on resume (issue 14, items 7 and 9): copies of the shared tiny run, damaged, then resumed.

- metrics.csv bytes that are not text, or cut inside a row (a flipped digit,
  emptied, deleted: tests/unit/callbacks/test_history_rebuild.py): the resume rebuilds the file from the rows the checkpoint holds, warns
  naming the file and what was wrong, and ends with the same file as the
  undamaged copy resumed the same way.
- config.yaml with values flipped that keep it valid (``seed: 1``,
  ``batch_size: 138``): refused, exit 2, naming every differing key with both
  values; nothing written. A damaged value the command line overrides is
  the override's (the cut copy's ``max_epochs: 5``, resumed with
  ``trainer.max_epochs=3``).
- A resume that changed settings and was killed before its first
  checkpoint leaves config.yaml ahead of last.ckpt: run.json records the
  changes, so the next plain resume accepts them and applies them (it ends
  as the resume that was not killed).
"""

from __future__ import annotations

import os
import shutil

import pytest
import yaml
from cli_runs import one_line_error, together

pytestmark = pytest.mark.slow  # make test-slow: seven resumes; the suite must stay under CI's 10 minutes

MORE = "trainer.max_epochs=3"
CHANGED = [MORE, "optimizer.lr=0.01", "+callbacks=[{class: fixtures/killer.py:KillAt}]"]
KILL = {"EXPRESSO_TEST_KILL_AT_STEP": "25"}  # inside epoch 3 (10 steps an epoch): last.ckpt stays epoch 2's


def damage_metrics(folder, how: str) -> None:
    path = folder / "metrics.csv"
    text = path.read_bytes()
    lines = text.splitlines(keepends=True)
    if how == "garbage":
        path.write_bytes(b"\xff\xfe\x00garbage\x9c\n")
    elif how == "cut":  # the header, the first row and half of the second
        path.write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])


def set_config(folder, **trainer) -> None:
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["trainer"].update(trainer)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def files_of(folder) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ("config.yaml", "run.json", "metrics.csv")}


@pytest.fixture(scope="module")
def resumed(base, project, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("damaged")
    folders = {name: root / name for name in ("clean", "garbage", "cut", "config", "changed", "killed")}
    for folder in folders.values():
        shutil.copytree(base, folder)
    for how in ("garbage", "cut"):
        damage_metrics(folders[how], how)
    set_config(folders["cut"], max_epochs=5)  # overridden by MORE: the command line's value counts
    set_config(folders["config"], seed=1, batch_size=138)
    before = files_of(folders["config"])
    commands = {name: (["resume", folders[name], MORE], None) for name in ("clean", "garbage", "cut", "config")}
    commands["changed"] = (["resume", folders["changed"], *CHANGED], None)
    commands["killed"] = (["resume", folders["killed"], *CHANGED], KILL)
    results = together(commands, cwd=project)
    assert results["killed"].returncode == -9, results["killed"].stderr
    results["again"] = together({"again": (["resume", folders["killed"]], None)}, cwd=project)["again"]
    return {"folders": folders, "results": results, "before": before}


@pytest.mark.parametrize(
    "how, what",
    [
        ("garbage", "is not UTF-8 text (byte 0)"),
        ("cut", "is cut short inside line 3: 1 of the 2 rows the checkpoint counts are whole"),
    ],
)
def test_a_damaged_metrics_csv_is_rebuilt_from_the_checkpoint_and_ends_as_the_undamaged_one(resumed, how, what):
    folders, results = resumed["folders"], resumed["results"]
    assert results["clean"].returncode == 0, results["clean"].stderr
    assert results[how].returncode == 0, results[how].stderr
    path = folders[how] / "metrics.csv"
    warning = f"expresso: warning: {path} {what}: rebuilt its 2 rows from the checkpoint"
    assert warning in results[how].stderr.splitlines(), results[how].stderr
    assert "warning" not in results["clean"].stderr
    clean = (folders["clean"] / "metrics.csv").read_bytes()
    assert len(clean.splitlines()) == 4  # the header, the 2 rows of the first training, the resumed third epoch
    assert path.read_bytes() == clean


def test_a_config_yaml_that_differs_from_the_checkpoint_is_refused_naming_each_key_and_writes_nothing(resumed):
    folder = resumed["folders"]["config"]
    line = one_line_error(resumed["results"]["config"])
    assert line == (
        f"expresso: error: {folder / 'config.yaml'} differs from the config last.ckpt was trained with:"
        " trainer.batch_size: 138 (config.yaml) vs 128 (checkpoint); trainer.seed: 1 (config.yaml) vs 0 (checkpoint)"
        " (a damaged file? put the checkpoint's values back; a resume changes settings with KEY=VALUE)"
    )
    assert files_of(folder) == resumed["before"]
    assert not [name for name in os.listdir(folder) if name.endswith(".tmp")]


def test_changes_a_killed_resume_recorded_are_applied_by_the_next_resume(resumed):
    folders, results = resumed["folders"], resumed["results"]
    assert results["changed"].returncode == 0, results["changed"].stderr
    assert results["again"].returncode == 0, results["again"].stderr
    assert "resume changes optimizer.lr: 0.003 -> 0.01" in results["again"].stderr
    for name in ("metrics.csv", "config.yaml"):
        assert (folders["killed"] / name).read_bytes() == (folders["changed"] / name).read_bytes(), name
