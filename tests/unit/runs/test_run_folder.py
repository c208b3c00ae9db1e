"""runs/folder.py and runs/record.py: a run folder's paths, the choice of a checkpoint, and run.json's durability."""

from __future__ import annotations

import json
import os
import stat

import pytest

from expresso.runs.folder import CheckpointFolder, RunFolder, RunFolderError, find_runs
from expresso.runs.record import RecordError, RunRecord, read_record


def test_every_file_of_a_run_has_one_path(tmp_path):
    folder = RunFolder(tmp_path / "run")
    assert {
        "config": folder.config,
        "record": folder.record,
        "history": folder.history,
        "log": folder.log,
        "last": folder.checkpoints.last,
        "previous": folder.checkpoints.previous,
        "best": folder.checkpoints.best,
        "manifest": folder.checkpoints.manifest,
        "manifest copy": folder.checkpoints.manifest_copy,
        "exports": folder.exports,
        "lock": folder.lock,
        "eval": folder.eval_result("test"),
        "predictions": folder.predictions("val"),
    } == {
        "config": tmp_path / "run" / "config.yaml",
        "record": tmp_path / "run" / "run.json",
        "history": tmp_path / "run" / "metrics.csv",
        "log": tmp_path / "run" / "log.txt",
        "last": tmp_path / "run" / "checkpoints" / "last.ckpt",
        "previous": tmp_path / "run" / "checkpoints" / "previous.ckpt",
        "best": tmp_path / "run" / "checkpoints" / "best.ckpt",
        "manifest": tmp_path / "run" / "checkpoints" / "manifest.json",
        "manifest copy": tmp_path / "run" / "checkpoints" / "manifest.copy.json",
        "exports": tmp_path / "run" / "export",
        "lock": tmp_path / "run" / "writer.lock",
        "eval": tmp_path / "run" / "eval-test.json",
        "predictions": tmp_path / "run" / "predictions-val.csv",
    }
    assert CheckpointFolder.top_k_name(3, 30) == "epoch=3-step=30.ckpt"
    assert folder.relative(folder.checkpoints.best) == "checkpoints/best.ckpt"


def test_best_falls_back_to_last_when_nothing_was_monitored_and_a_missing_checkpoint_is_named(tmp_path):
    folder = RunFolder.planned(tmp_path, "my experiment!").create()
    assert folder.path.parent == tmp_path / "my-experiment" and folder.checkpoints.path.is_dir()
    with pytest.raises(RunFolderError) as missing:
        folder.checkpoint("best")
    assert str(missing.value) == f"{folder.checkpoints.best}: checkpoint not found"
    assert not folder.checkpoints.has_resume_point()
    folder.checkpoints.last.write_bytes(b"")
    assert folder.checkpoint("best") == folder.checkpoint("last") == folder.checkpoints.last
    folder.checkpoints.best.write_bytes(b"")
    assert folder.checkpoint("best") == folder.checkpoints.best
    assert folder.checkpoint(str(folder.checkpoints.last)) == folder.checkpoints.last
    assert folder.checkpoints.has_resume_point()


def test_opening_a_folder_that_is_not_a_run_names_what_is_missing(tmp_path):
    with pytest.raises(RunFolderError) as nothing:
        RunFolder.open(tmp_path / "nope")
    assert str(nothing.value) == f"{tmp_path / 'nope'}: not a run folder (missing config.yaml, run.json)"
    run = tmp_path / "runs" / "exp" / "20250101-000000-abcdef"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("name: x\n")
    with pytest.raises(RunFolderError) as half:
        RunFolder.open(run)
    assert str(half.value) == f"{run}: not a run folder (missing run.json)"
    (run / "run.json").write_text("{}")
    assert RunFolder.open(run) == RunFolder(run)
    assert find_runs(tmp_path / "runs") == [RunFolder(run)]


def test_a_trackers_record_inside_a_run_folder_is_not_another_run(tmp_path):
    runs = [tmp_path / "runs" / "exp" / name for name in ("20250101-000000-abcdef", "20250101-000001-abcdef")]
    for run in runs:
        RunFolder(run).sacred_run(1).path.mkdir(parents=True)
        (run / "run.json").write_text("{}")
    RunFolder(runs[0]).sacred_run(1).record.write_text("{}")  # Sacred's run.json (and config.yaml) in sacred/1/
    (RunFolder(runs[0]).sacred_run(1).path / "config.yaml").write_text("name: x\n")
    assert find_runs(tmp_path / "runs") == [RunFolder(run) for run in runs]


def test_run_json_is_fsynced_when_its_status_changes_and_not_for_a_summary(tmp_path, monkeypatch):
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):  # the file's own fsync (the folder's follows it)
            on_disk = RunFolder(tmp_path).record
            synced.append(json.loads(on_disk.read_text()).get("status") if on_disk.is_file() else "-")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    record = RunRecord(tmp_path, {})
    record.data = {"status": "running", "summary": {}}
    record.update(offline=False)  # the start: durable
    record.update(summary={"epochs": 1})  # an epoch's summary, a heartbeat: not
    record.update(heartbeat="now")
    record.finish("interrupted")  # durable
    again = RunRecord(tmp_path)  # a resume reads it back
    again.update(summary={"epochs": 2})  # not
    again.update(status="running")  # durable
    again.finish("completed")  # durable
    # What the record held on disk at each fsync: the write before the rename, so the status before it.
    assert synced == ["-", "running", "interrupted", "running"]
    assert read_record(RunFolder(tmp_path).record)["status"] == "completed"


def test_a_record_of_the_wrong_shape_is_refused_naming_the_file_and_the_field(tmp_path):
    path = RunFolder(tmp_path).record
    path.write_text(json.dumps({"status": "running", "pid": "123"}))
    with pytest.raises(RecordError) as caught:
        read_record(path)
    assert str(caught.value) == f"{path}: field 'pid' holds '123', expected a int"


def test_a_runs_root_below_a_regular_file_is_one_error_naming_the_folder(tmp_path):
    (tmp_path / "afile").write_text("")
    folder = RunFolder(tmp_path / "afile" / "runs" / "exp" / "run1")
    with pytest.raises(RunFolderError) as caught:
        folder.create()
    assert str(caught.value) == f"{folder.path}: cannot create the run folder (Not a directory)"
