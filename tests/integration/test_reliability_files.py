"""Damage to the checkpoints' own records, and a disk that fills at the first checkpoint: real processes, real files.

Same project and experiment as test_reliability.py (every 4 steps a
checkpoint, 10 steps an epoch). Two trainings run at once:

- one whose files may not grow past 10 kB from step 1: its first
  checkpoint write (step 4) fails inside torch's zip writer, which turns the
  file's ``OSError`` into its own ``RuntimeError`` ("unexpected pos");
- one stopped by SIGTERM at step 18 (last.ckpt at 18, previous.ckpt at 16),
  whose manifest is then damaged (garbage, or deleted) while one bit of a
  weight inside last.ckpt is flipped: a file that still loads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from cli_runs import finish, start, together
from test_reliability import EXPERIMENT
from test_resume import load, make_project, only_run_dir, read_record

pytestmark = (
    pytest.mark.slow
)  # make test-slow: four trainings; tests/unit/engine/checkpoints/test_manifest.py runs in CI


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory, "sturdy", EXPERIMENT)


@pytest.fixture(scope="module")
def trainings(project):
    """The full disk at the first write and the run stopped at step 18, trained at once."""
    config = "configs/experiments/sturdy.yaml"
    return together(
        {
            "full": (["train", config, "--runs-root", project / "full"], {"EXPRESSO_TEST_FSIZE_AT_STEP": "1:10000"}),
            "stopped": (["train", config, "--runs-root", project / "stopped"], {"EXPRESSO_TEST_SIGNAL_AT_STEP": "18"}),
        },
        project,
    )


def test_a_disk_full_at_the_first_checkpoint_fails_the_run_in_one_line_that_says_no_checkpoint_was_written(
    trainings, project
):
    result = trainings["full"]
    run_dir = only_run_dir(project / "full", "sturdy")
    last = run_dir / "checkpoints" / "last.ckpt"
    message = f"{last}: cannot write (File too large); no checkpoint was written yet"
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == f"expresso: the run failed: {message}"
    assert "Traceback" not in result.stderr
    assert read_record(run_dir)["error"] == {"type": "CheckpointWriteError", "message": message}
    log = (run_dir / "log.txt").read_text()  # the chain behind it, for whoever debugs it: the file's error first
    assert "OSError: [Errno 27] File too large\n" in log and "unexpected pos" in log
    assert sorted(p.name for p in last.parent.iterdir()) == []  # no checkpoint, no temporary file, no record


def flip_a_weight_bit(checkpoint: Path) -> None:
    """One bit of the first weight's stored bytes (not the zip's structure): torch.load still reads the file."""
    data = bytearray(checkpoint.read_bytes())
    name = "layers.1.weight"  # the MLP's first Linear (layers.0 is its Flatten)
    weight = load(checkpoint)["models"]["model"][name]
    offset = bytes(data).find(weight.numpy().tobytes())
    assert offset > 0
    data[offset + 5] ^= 0x10
    checkpoint.write_bytes(bytes(data))
    changed = load(checkpoint)["models"]["model"][name]
    assert not torch.equal(changed, weight) and (changed != weight).sum() == 1


def test_a_damaged_or_missing_manifest_is_said_and_the_copy_still_catches_a_flipped_weight_bit(
    trainings, project, tmp_path
):
    assert trainings["stopped"].returncode == 75, trainings["stopped"].stderr
    stopped = only_run_dir(project / "stopped", "sturdy")
    garbled, deleted = tmp_path / "garbled", tmp_path / "deleted"
    for copy in (garbled, deleted):
        shutil.copytree(stopped, copy)
        flip_a_weight_bit(copy / "checkpoints" / "last.ckpt")
    (garbled / "checkpoints" / "manifest.json").write_bytes(b'{"files": {"last.ckpt": {"size": 8\x00garbage')
    (deleted / "checkpoints" / "manifest.json").unlink()  # a record lost while the checkpoints were kept

    resumed = start(["resume", garbled], project)
    refused = start(["eval", deleted, "--checkpoint", "last", "--split", "val"], project)
    resumed, refused = finish(resumed), finish(refused)

    checkpoints = garbled / "checkpoints"
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.splitlines()[:3] == [
        f"expresso: warning: {checkpoints / 'manifest.json'}: damaged (not JSON); the checkpoints are verified against"
        f" {checkpoints / 'manifest.copy.json'}, and both are rewritten at the next write",
        *[
            line
            for line in resumed.stderr.splitlines()
            if line.startswith(f"expresso: {checkpoints / 'last.ckpt'}: damaged: ")
        ],
        f"resuming from the previous checkpoint instead: {checkpoints / 'previous.ckpt'} (step 16)",
    ]
    assert read_record(garbled)["status"] == "completed" and load(checkpoints / "last.ckpt")["loop"]["step"] == 30
    repaired = json.loads((checkpoints / "manifest.json").read_text())
    assert repaired == json.loads((checkpoints / "manifest.copy.json").read_text())
    assert repaired["files"]["last.ckpt"]["step"] == 30

    checkpoints = deleted / "checkpoints"
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.splitlines()
    assert lines[0] == (
        f"expresso: warning: {checkpoints / 'manifest.json'}: missing; the checkpoints are verified against"
        f" {checkpoints / 'manifest.copy.json'}, and both are rewritten at the next write"
    )
    assert lines[1].startswith(f"expresso: error: {checkpoints / 'last.ckpt'}: damaged: ") and len(lines) == 2, lines
    assert (
        not list(deleted.glob("eval-*.json")) and not (checkpoints / "manifest.json").exists()
    )  # a reader writes nothing
