"""Comet and W&B through the CLI, offline, each read back in its own format: the Comet archives' messages.json and
W&B's record files (wandb's own protobuf ``Record``) hold metrics.csv's values at its steps, the flattened config,
config.yaml and how the run ended; a run SIGKILLed past its checkpoint and resumed holds each step once; nothing is
written outside the run folder (home, temporary folder, working directory) and no wandb process outlives the run."""

from __future__ import annotations

import itertools
import json
import time
import zipfile
from pathlib import Path

import pytest
from cli_runs import curves, finish, flattened, only_run_dir, read_config, read_history, start

pytestmark = pytest.mark.slow  # make test-slow: it needs the comet and wandb extras, which it installs

TRACKED = ["configs/experiments/tiny.yaml", "trainer.log_every_n_steps=3"]  # step rows at 3, 6, 9, then 12, 15, 18
COMET_OWN = {"process duration"}  # the one metric Comet adds by itself, at the experiment's end


def epochs(run_dir: Path) -> dict[int, int]:
    return {int(row["step"]): int(row["epoch"]) for row in read_history(run_dir)}


def grids(run_dir: Path) -> list[bytes]:
    """The PNGs ImageGrid wrote for epochs 1 and 2 (of the first layer's weights: they differ)."""
    found = [(run_dir / "images" / f"weights-epoch00{epoch}.png").read_bytes() for epoch in (1, 2)]
    assert found[0] != found[1]
    return found


def model_summary(run_dir: Path) -> bytes:
    """The model summary the run's log shows (ModelSummary's table, the one model's)."""
    lines = (run_dir / "log.txt").read_text().splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("model 'model' ("))
    table = [lines[start], *itertools.takewhile(lambda line: line.startswith("  "), lines[start + 1 :])]
    return "\n".join(table).encode()


def tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


# -- Comet: the offline archives -------------------------------------------------------------------------------
def comet_archives(run_dir: Path) -> list[dict]:
    """Each archive in comet/: its experiment.json, messages (parsed JSON lines) and the files it carries."""
    archives = []
    for path in sorted((run_dir / "comet").glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            archives.append(
                {
                    "path": path,
                    "meta": json.loads(archive.read("experiment.json")),
                    "messages": [json.loads(line) for line in archive.read("messages.json").decode().splitlines()],
                    "files": {name: archive.read(name) for name in names},
                }
            )
    return archives


def payloads(archive: dict, kind: str) -> list[dict]:
    return [message["payload"] for message in archive["messages"] if message["type"] == kind]


# -- W&B: the record files ---------------------------------------------------------------------------------------
def wandb_records(path: Path) -> list:
    """Every record of a run-<id>.wandb file, as wandb's protobuf ``Record``; the framing is LevelDB's log format
    (7-byte file header, 32 KiB blocks, records of crc32, length, kind 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pieces, records = 7, [], []
    while position + 7 <= len(data):
        if 32768 - position % 32768 < 7:
            position += 32768 - position % 32768
            continue
        length, kind = int.from_bytes(data[position + 4 : position + 6], "little"), data[position + 6]
        payload = data[position + 7 : position + 7 + length]
        assert len(payload) == length and kind in (1, 2, 3, 4), (path, position)
        position += 7 + length
        pieces = [payload] if kind in (1, 2) else [*pieces, payload]
        if kind in (1, 4):
            record = Record()
            record.ParseFromString(b"".join(pieces))
            records.append(record)
    return records


def of_kind(records: list, kind: str) -> list:
    return [getattr(record, kind) for record in records if record.WhichOneof("record_type") == kind]


def wandb_process_of(pid: int) -> list[str]:
    """Running wandb service processes started for the process ``pid`` (wandb-core ... --pid PID)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            args
            and args[0].endswith(b"wandb-core")
            and b"--pid" in args
            and args[args.index(b"--pid") + 1] == b"%d" % pid
        ):
            found.append(proc.name)
    return found


def test_comet_and_wandb_offline_hold_the_runs_values_and_a_run_killed_past_its_checkpoint_resumes_with_each_step_once(
    project, tmp_path
):
    import matplotlib

    home, temporary = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temporary.mkdir()
    # no credentials: offline by default; a fresh home and temporary folder, to see what is written there
    env = {
        "HOME": str(home),
        "TMPDIR": str(temporary),
        "XDG_CACHE_HOME": "",
        "XDG_CONFIG_HOME": "",
        "XDG_DATA_HOME": "",
        "MPLCONFIGDIR": matplotlib.get_configdir(),  # comet_ml imports matplotlib, which keeps its font cache there
        "COMET_API_KEY": "",
        "WANDB_API_KEY": "",
    }
    in_project = tree(project)  # the session's project: other tests write there too
    roots, processes = {}, {}
    for tracker in ("comet", "wandb"):
        roots[tracker] = tmp_path / f"runs-{tracker}"
        kill = (
            f"callbacks=[{{class: fixtures/probes.py:KillOnce, epoch: 2, marker: {tmp_path / tracker}}},"
            " {class: fixtures/probes.py:WeightsAsImages},"
            " {class: expresso.callbacks.ImageGrid, tensor: weights, max_images: 4}]"
        )
        processes[tracker] = start(
            ["train", *TRACKED, f"loggers=[csv, {tracker}]", kill, "--runs-root", roots[tracker]], project, env
        )
    killed = {tracker: finish(process) for tracker, process in processes.items()}
    for result in killed.values():
        assert result.returncode == -9, result.stderr  # SIGKILL at epoch 2, before its checkpoint
    run_dirs = {tracker: only_run_dir(root, "tiny") for tracker, root in roots.items()}
    pids = [process.pid for process in processes.values()]
    processes = {tracker: start(["resume", run_dir], project, env) for tracker, run_dir in run_dirs.items()}
    pids += [process.pid for process in processes.values()]
    resumed = {tracker: finish(process) for tracker, process in processes.items()}
    for result in resumed.values():
        assert result.returncode == 0, result.stderr
    # the trackers are quiet on the console: expresso's own lines only
    console = {tracker: (result.stdout + result.stderr).splitlines() for tracker, result in resumed.items()}
    assert [line for line in console["wandb"] if line.startswith("wandb")] == []
    assert [line for line in console["comet"] if line.startswith("COMET")] == []
    comet_lines = [line for line in console["comet"] if line.startswith("comet")]

    # metrics.csv: each row once, the truth both trackers are compared with
    expected = {tracker: curves(run_dir) for tracker, run_dir in run_dirs.items()}
    for series in expected.values():
        assert [step for step, _ in series["train/batch_loss"]] == [3, 6, 9, 12, 15, 18]
        assert {key: [step for step, _ in points] for key, points in series.items() if key != "train/batch_loss"} == {
            key: [10, 20] for key in ("lr", "train/loss", "train/acc", "val/loss", "val/acc")
        }

    # Comet: two archives of one experiment (the killed process's data, archived by the resume, and the resumed
    # run's), which together hold each value at its step and epoch once, the config, config.yaml and the status
    run_dir = run_dirs["comet"]
    archives = comet_archives(run_dir)
    assert len(archives) == 2
    assert len({archive["meta"]["offline_id"] for archive in archives}) == 1
    assert {archive["meta"]["resume_strategy"] for archive in archives} == {"get_or_create"}
    killed_archive, resumed_archive = sorted(archives, key=lambda archive: archive["meta"]["start_time"])
    assert killed_archive["meta"]["stop_time"] <= resumed_archive["meta"]["start_time"]
    assert comet_lines == [
        f"comet: the data of a process killed before its end is archived as {killed_archive['path']}"
    ]
    metrics: dict[str, list[tuple[int, float]]] = {}
    for archive in archives:
        for payload in payloads(archive, "metric_msg"):
            metric = payload["metric"]
            metrics.setdefault(metric["metricName"], []).append((metric["step"], metric["metricValue"]))
            if metric["metricName"] not in COMET_OWN:
                assert metric["epoch"] == epochs(run_dir)[metric["step"]]
    assert {key: sorted(points) for key, points in metrics.items() if key not in COMET_OWN} == expected["comet"]
    assert set(metrics) - set(expected["comet"]) == COMET_OWN
    for archive in archives:  # each process sent the config it trained with
        params = {
            p["param"]["paramName"]: p["param"]["paramValue"]
            for p in payloads(archive, "parameter_msg")
            if "param" in p
        }
        params.update(
            {
                p["params"]["paramName"]: p["params"]["paramValue"]
                for p in payloads(archive, "parameter_msg")
                if "params" in p
            }
        )
        assert {key: value for key, value in params.items() if key not in ("curr_step", "curr_epoch")} == flattened(
            read_config(run_dir)
        )
        assets = {
            upload["additional_params"]["fileName"]: archive["files"][upload["file_path"]]
            for upload in payloads(archive, "file_upload")
            if upload["upload_type"] == "asset"
        }
        assert assets == {
            "config.yaml": (run_dir / "config.yaml").read_bytes(),
            "model_summary.txt": model_summary(run_dir),
        }
    # ImageGrid's grid of each epoch: a Comet image at its step, once (the resume skipped the epoch 2 the killed
    # process's archive holds), the file's bytes
    images = [
        (
            upload["additional_params"]["figName"],
            upload["additional_params"]["step"],
            archive["files"][upload["file_path"]],
        )
        for archive in (killed_archive, resumed_archive)
        for upload in payloads(archive, "file_upload")
        if upload["upload_type"] == "visualization"
    ]
    assert images == [("images/weights", step, grid) for step, grid in zip((10, 20), grids(run_dir))]
    others = [{p["key"]: p["value"] for p in payloads(archive, "log_other")} for archive in archives]
    assert "status" not in others[archives.index(killed_archive)]
    assert others[archives.index(resumed_archive)]["status"] == "completed"
    assert others[archives.index(resumed_archive)]["Name"] == run_dir.name
    assert tree(run_dir / "comet") == sorted(path.name for path in (run_dir / "comet").glob("*.zip"))

    # W&B: two offline folders of one run id, the killed process's (as far as wandb's service wrote it: a SIGKILL
    # loses the unwritten tail of its 32 KiB blocks, often all of it) and the resumed run's, which first logs the rows
    # the checkpoint counts that the first lacks; their history rows hold each value at its step once with its epoch;
    # the config, config.yaml and the exit code
    run_dir = run_dirs["wandb"]
    folders = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(folders) == 2
    [run_id] = {folder.name.rsplit("-", 1)[1] for folder in folders}
    records = [wandb_records(folder / f"run-{run_id}.wandb") for folder in folders]
    assert [run.run_id for run in of_kind(records[0], "run")] in ([], [run_id])
    assert [(run.run_id, run.project, run.resume) for run in of_kind(records[1], "run")] == [(run_id, "tiny", True)]
    history: dict[str, list[tuple[int, float]]] = {}
    wandb_images: list[tuple[int, Path]] = []
    folder_of = {id(found): folder for found, folder in zip(records, folders)}
    for found in records:
        for row in of_kind(found, "history"):
            values = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in row.item}
            assert values["epoch"] == epochs(run_dir)[row.step.num] and values["_step"] == row.step.num
            for key, value in values.items():
                if not key.startswith(("_", "images/weights/")) and key != "epoch":
                    history.setdefault(key, []).append((row.step.num, value))
            if "images/weights/path" in values:  # a wandb.Image: its file, saved in the folder's files/
                wandb_images.append((row.step.num, (folder_of[id(found)] / "files" / values["images/weights/path"])))
    assert {key: sorted(points) for key, points in history.items()} == expected["wandb"]
    # ImageGrid's grid of each epoch in the row of the epoch's metrics, once, the file's bytes; the model summary
    assert [(step, path.read_bytes()) for step, path in sorted(wandb_images)] == list(zip((10, 20), grids(run_dir)))
    assert (folders[1] / "files" / "model_summary.txt").read_bytes() == model_summary(run_dir)
    updates = [item for run in of_kind(records[1], "run") for item in run.config.update]
    updates += [item for record in of_kind(records[1], "config") for item in record.update]
    config = {item.key: json.loads(item.value_json) for item in updates if item.key != "_wandb"}  # the last values
    assert config == flattened(read_config(run_dir))
    assert "config.yaml" in [file.path for files in of_kind(records[1], "files") for file in files.files]
    for folder in folders:
        assert (folder / "files" / "config.yaml").read_bytes() == (run_dir / "config.yaml").read_bytes()
    assert [exit.exit_code for exit in of_kind(records[0], "exit")] == []  # the SIGKILL left no word
    assert [exit.exit_code for exit in of_kind(records[1], "exit")] == [0]
    summary = {item.key: item.value_json for record in of_kind(records[1], "summary") for item in record.update}
    assert json.loads(summary["status"]) == "completed"

    # nothing outside the run folders, and no wandb service left running
    assert tree(home) == []
    assert [path for path in tree(temporary) if not path.startswith("torchinductor_")] == []  # torch's, in any run
    assert tree(project) == in_project
    deadline = time.monotonic() + 10  # the killed process's service notices its end by itself
    while any(wandb_process_of(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [wandb_process_of(pid) for pid in pids] == [[], [], [], []]
