"""Several processes through torchrun, on the CPU with gloo, listening on loopback only.

``expresso train`` with ``trainer.devices: 2`` starts two workers through
torchrun's elastic agent; they train the digits MLP with DDP. The
independent computation is one process with twice the batch: DDP averages
the two ranks' gradients of 64 rows each, which is the gradient of the 128
rows one process reads (the ranks deal the same order, DistributedSampler's
way), so the weights agree up to float32 rounding. The configs have no
dropout (each rank would draw its own masks) and drop the last partial batch
(two half batches of unequal size average differently from the one batch,
and the padded shard repeats a sample).

Tolerance: ``atol=1e-6`` on weights of magnitude ~0.1-1: the mean of two
means of 64 rows and the mean of 128 rows round differently (~1e-7
relative per step), over 18 AdamW steps; measured 3.7e-8.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from cli_runs import (
    EXAMPLES,
    finish,
    only_run_dir,
    printed_metrics,
    read_history,
    read_record,
    run_dirs,
    start,
    together,
)

DDP = """\
    extends: {examples}/configs/experiments/digits_mlp.yaml
    name: ddp
    model: {{dropout: 0.0}}
    trainer: {{max_epochs: 2, batch_size: 64, devices: 2}}
    dataloader: {{drop_last: true}}
    """
# One process, the global batch of the two: what the two processes must equal.
ONE = """\
    extends: ddp.yaml
    trainer: {batch_size: 128, devices: null}
    """
TOLERANCE = {"rtol": 0.0, "atol": 1e-6}  # the module docstring says why


@pytest.fixture
def configs(tmp_path) -> Path:
    (tmp_path / "ddp.yaml").write_text(textwrap.dedent(DDP).format(examples=EXAMPLES))
    (tmp_path / "one.yaml").write_text(textwrap.dedent(ONE))
    return tmp_path


def weights(run_dir: Path, name: str = "last") -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / f"{name}.ckpt", weights_only=False)["models"]["model"]


def files(run_dir: Path) -> list[str]:
    return sorted(str(path.relative_to(run_dir)) for path in run_dir.rglob("*"))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], **TOLERANCE)


def assert_same_history(a: list[dict], b: list[dict]) -> None:
    assert [row.keys() for row in a] == [row.keys() for row in b]
    for row, other in zip(a, b):
        for key in row:
            assert float(row[key]) == pytest.approx(float(other[key]), abs=1e-5), key


# Three trainings, two of them torchrun workers (~13 s): CI trains two processes through docs/scale.md's command
# (exit 0, one run folder); the equality with one process runs in `make test-slow`.
@pytest.mark.slow
def test_two_processes_train_as_one_process_with_their_global_batch(configs):
    results = together(
        {
            "two": (["train", "ddp.yaml", "--runs-root", "two"], None),
            "one": (["train", "one.yaml", "--runs-root", "one"], None),
        },
        cwd=configs,
    )
    for result in results.values():
        assert result.returncode == 0, result.stderr
    two, one = only_run_dir(configs / "two", "ddp"), only_run_dir(configs / "one", "ddp")
    assert_same_weights(weights(two), weights(one))
    # Global metrics: each rank saw half of every batch and half of the validation split; the history is the whole's.
    assert_same_history(read_history(two), read_history(one))
    # Rank 0 alone wrote: one run folder, holding what a one-process run holds, each line of the console once.
    assert files(two) == files(one)
    record = read_record(two)
    assert (record["status"], record["processes"], record["backend"]) == ("completed", 2, "gloo")
    assert "processes" not in read_record(one)
    stderr = results["two"].stderr
    assert stderr.count("epoch 1/2 ") == 1 and stderr.count("epoch 2/2 ") == 1, stderr
    assert (two / "log.txt").read_text().count("epoch 2/2 ") == 1
    assert results["two"].stdout.count("final metrics") == 1
    final = {key: float(value) for key, value in printed_metrics(results["one"].stdout).items()}
    assert {key: float(value) for key, value in printed_metrics(results["two"].stdout).items()} == pytest.approx(
        final, abs=1e-5
    )


# -- make test-slow: the elastic restart, a refusal on one rank, the listeners -----------------------------
def _listening(pids: set[int]) -> list[str]:
    """The local addresses the processes ``pids`` listen on (TCP, v4 and v6), read from /proc."""
    inodes = set()
    for pid in pids:
        for fd in glob.glob(f"/proc/{pid}/fd/*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(fields[1])
    return found


def _loopback(address: str) -> bool:
    host = address.split(":")[0]
    return host in ("0100007F", "00000000000000000000000001000000")  # 127.0.0.1, ::1


def _workers(parent: int) -> dict[int, int]:
    """The workers torchrun started under ``parent``: local rank -> pid."""
    found = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            if Path(stat).read_text().split()[3] != str(parent):
                continue
            env = Path(stat).with_name("environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ranks = [item[len(b"LOCAL_RANK=") :] for item in env if item.startswith(b"LOCAL_RANK=")]
        if ranks:
            found[int(ranks[0])] = int(Path(stat).parent.name)
    return found


@pytest.mark.slow
def test_a_killed_worker_is_restarted_by_torchrun_and_the_run_ends_as_if_uninterrupted(configs):
    """torchrun --max-restarts 1 under a file rendezvous; SIGKILL of rank 1 after the first epoch's checkpoint."""
    env = {
        **os.environ,
        "EXPRESSO_DIST_STORE": str(configs / "store"),
        "GLOO_SOCKET_IFNAME": "lo",
        "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
    }
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--max-restarts", "1"]
    torchrun += [
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        str(configs / "rendezvous"),
        "--rdzv-conf",
        "store_type=file",
    ]
    torchrun += ["--local-addr", "127.0.0.1", "--monitor-interval", "0.1"]
    train = ["-m", "expresso", "train", "ddp.yaml", "trainer.max_epochs=4", "--runs-root", "two"]
    agent = subprocess.Popen(
        [*torchrun, *train, "--run-id", "job", "--resume-if-exists"],
        cwd=configs,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    one = start(["train", "one.yaml", "trainer.max_epochs=4", "--runs-root", "one"], configs)
    history = configs / "two" / "ddp" / "job" / "metrics.csv"
    deadline = time.monotonic() + 240
    while not (history.is_file() and len(history.read_text().splitlines()) >= 2):  # epoch 1 recorded and saved
        assert agent.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    workers = _workers(agent.pid)
    listening = _listening({agent.pid, *workers.values()})
    os.kill(workers[1], signal.SIGKILL)
    stdout, stderr = agent.communicate(timeout=300)
    assert agent.returncode == 0, stderr
    assert finish(one).returncode == 0
    assert listening and all(_loopback(address) for address in listening), listening  # gloo's, on 127.0.0.1
    run = configs / "two" / "ddp" / "job"
    assert run_dirs(configs / "two", "ddp") == [run]
    record = read_record(run)
    assert record["status"] == "completed" and len(record["resumes"]) == 1, record
    assert "resuming" in stderr
    assert_same_weights(weights(run), weights(only_run_dir(configs / "one", "ddp")))
    assert [row["epoch"] for row in read_history(run)] == ["1", "2", "3", "4"]


@pytest.mark.slow
def test_an_error_on_rank_0_is_shown_once_and_stops_every_rank_with_its_exit_status(configs):
    """A --run-id that holds a completed run: rank 0 refuses (exit 2) before it tells rank 1 what to train."""
    first = finish(
        start(["train", "ddp.yaml", "trainer.max_epochs=1", "--run-id", "done", "--runs-root", "r"], configs)
    )
    assert first.returncode == 0, first.stderr
    again = finish(
        start(["train", "ddp.yaml", "trainer.max_epochs=1", "--run-id", "done", "--runs-root", "r"], configs)
    )
    assert again.returncode == 2
    assert again.stderr.splitlines() == [
        f"expresso: error: {Path('r/ddp/done')}: holds a completed run; use another --run-id, or --force to move it"
        " aside and start over"
    ]


@pytest.mark.slow
def test_expresso_resume_of_a_two_process_run_starts_its_two_processes_again(configs):
    """The run's trainer.devices (which a resume keeps) makes `expresso resume` launch as `train` did."""
    results = together(
        {
            "two": (["train", "ddp.yaml", "trainer.max_epochs=1", "--runs-root", "two"], None),
            "one": (["train", "one.yaml", "--runs-root", "one"], None),
        },
        cwd=configs,
    )
    assert all(result.returncode == 0 for result in results.values()), results["two"].stderr
    run = only_run_dir(configs / "two", "ddp")
    resumed = finish(start(["resume", run, "trainer.max_epochs=2"], configs))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("epoch 2/2 ") == 1
    assert run_dirs(configs / "two", "ddp") == [run]
    assert_same_weights(weights(run), weights(only_run_dir(configs / "one", "ddp")))
    refused = finish(start(["resume", run, "trainer.devices=1", "trainer.max_epochs=3"], configs))
    assert refused.returncode == 2
    assert "trainer.devices" in refused.stderr and len(refused.stderr.splitlines()) == 1, refused.stderr


@pytest.mark.slow
def test_sigterm_to_the_launching_process_checkpoints_and_stops_as_one_process_does(configs):
    """The agent passes SIGTERM on: the workers checkpoint at the step's end and stop; exit 75, recorded interrupted.

    Before the signal: the launching process and its workers listen on loopback only (gloo's sockets).
    """
    launcher = start(["train", "ddp.yaml", "trainer.max_epochs=6", "--runs-root", "two"], configs)
    deadline = time.monotonic() + 240
    while (
        not (histories := list((configs / "two").glob("ddp/*/metrics.csv")))
        or len(histories[0].read_text().splitlines()) < 2
    ):
        assert launcher.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    workers = _workers(launcher.pid)  # the agent runs in the launching process; the workers are its children
    listening = _listening({launcher.pid, *workers.values()})
    launcher.send_signal(signal.SIGTERM)
    result = finish(launcher)
    assert len(workers) == 2 and listening and all(map(_loopback, listening)), (workers, listening)
    assert result.returncode == 75, result.stderr
    record = read_record(only_run_dir(configs / "two", "ddp"))
    assert (record["status"], record["interrupted_by"]) == ("interrupted", "SIGTERM")
    assert result.stderr.count("stopped by SIGTERM") == 1 and "death signal" not in result.stderr, result.stderr


SCRIPT = """\
import functools, os, sys
import torch
from torch import nn
from torch.utils.data import TensorDataset
import expresso

generator = torch.Generator().manual_seed(0)
data = TensorDataset(torch.randn(64, 3, generator=generator), torch.randint(0, 2, (64,), generator=generator))
torch.manual_seed(int(os.environ["RANK"]))  # a different initial model on each rank: DDP starts them all from rank 0's
trainer = expresso.Trainer(
    model=nn.Linear(3, 2),
    loss=nn.CrossEntropyLoss(),
    optimizer=functools.partial(torch.optim.SGD, lr=0.1),
    train_data=data,
    val_data=data,
    settings={"max_epochs": 2, "batch_size": 8, "seed": 0},
    run_dir=sys.argv[1],
)
trainer.fit()
print("weights", os.environ["RANK"], trainer.graph.models["model"].weight.sum().item(), flush=True)
"""


@pytest.mark.slow
def test_the_python_trainer_under_torchrun_trains_one_model_and_writes_on_rank_0(tmp_path):
    (tmp_path / "script.py").write_text(SCRIPT)
    env = {
        **os.environ,
        "EXPRESSO_DIST_STORE": str(tmp_path / "store"),
        "GLOO_SOCKET_IFNAME": "lo",
        "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
    }
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--rdzv-backend", "c10d"]
    torchrun += ["--rdzv-endpoint", str(tmp_path / "rendezvous"), "--rdzv-conf", "store_type=file"]
    torchrun += ["--local-addr", "127.0.0.1"]
    result = subprocess.run(
        [*torchrun, "script.py", "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    sums = dict(line.split()[1:] for line in result.stdout.splitlines() if line.startswith("weights"))
    assert sums.keys() == {"0", "1"} and sums["0"] == sums["1"]  # one model, the same on both ranks
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["checkpoints", "curves.png", "metrics.csv"]
