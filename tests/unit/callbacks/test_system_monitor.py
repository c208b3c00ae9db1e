"""SystemMonitor: this process's real readings in every epoch row, and a sampling thread that never outlives the fit."""

from __future__ import annotations

import csv
import re
import sys
import threading
import types

import psutil
import pytest

from expresso.callbacks import History, SystemMonitor
from expresso.callbacks.system_monitor import CPU, DISK_READ, DISK_WRITE, RAM, RSS
from expresso.config.check import check
from expresso.engine import Callback

KEYS = (CPU, RAM, RSS, DISK_READ, DISK_WRITE)
GPU_KEY = re.compile(r"system/gpu[0-9]+_(util_percent|memory_mib)")
MIB = 1024 * 1024


class ReadsTheMachine(Callback):
    """At each epoch's end, after the monitor: its values, and psutil's own reading of this process at that moment."""

    order = 1000

    def __init__(self):
        self.metrics: list[dict] = []
        self.rss: list[float] = []
        self.threads: list[list[str]] = []

    def on_epoch_end(self, state) -> None:
        self.metrics.append({key: value for key, value in state.metrics.items() if key.startswith("system/")})
        self.rss.append(psutil.Process().memory_info().rss / MIB)
        self.threads.append(monitor_threads())


class Fails(Callback):
    def on_batch_end(self, state) -> None:
        if state.step == 3:
            raise RuntimeError("boom at step 3")


def monitor_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name == "expresso-system-monitor"]


def test_every_epoch_row_holds_this_process_s_readings_and_the_thread_ends_with_the_fit(make_trainer, tmp_path):
    reads = ReadsTheMachine()
    trainer = make_trainer(SystemMonitor(interval=0.01), History(), reads, max_epochs=2, run_dir=tmp_path)
    trainer.fit()

    for metrics in reads.metrics:  # a machine with a GPU and nvidia-ml-py adds its two values per GPU
        assert set(metrics) - set(KEYS) == {key for key in metrics if GPU_KEY.fullmatch(key)}
        assert set(KEYS) <= set(metrics)
    assert reads.threads == [["expresso-system-monitor"]] * 2  # it sampled during the fit
    assert monitor_threads() == []  # and is gone after it
    for metrics, rss in zip(reads.metrics, reads.rss):
        # the mean of the epoch's samples against one reading at its end: a tiny fit's RSS moves by far less than this
        assert metrics[RSS] == pytest.approx(rss, rel=0.1)
        assert 0.0 <= metrics[CPU] <= 100.0
        assert 0.0 < metrics[RAM] <= psutil.virtual_memory().total / MIB
        assert metrics[DISK_READ] >= 0.0 and metrics[DISK_WRITE] >= 0.0
    with (tmp_path / "metrics.csv").open(newline="") as handle:
        epoch_rows = [row for row in csv.DictReader(handle) if row["train/loss"]]
    # in the same rows as the built-in values, as written: repr of the float
    assert [{key: row[key] for key in metrics} for row, metrics in zip(epoch_rows, reads.metrics)] == [
        {key: repr(value) for key, value in metrics.items()} for metrics in reads.metrics
    ]


def test_the_thread_ends_when_the_fit_raises(make_trainer):
    trainer = make_trainer(SystemMonitor(interval=0.01), Fails(), max_epochs=2)
    with pytest.raises(RuntimeError, match="boom at step 3"):
        trainer.fit()
    assert monitor_threads() == []


def test_the_sampling_thread_is_a_daemon_so_it_never_keeps_the_process_alive(make_trainer):
    seen = []

    class Look(Callback):
        def on_batch_end(self, state) -> None:
            seen.extend(t.daemon for t in threading.enumerate() if t.name == "expresso-system-monitor")

    make_trainer(SystemMonitor(interval=0.01), Look(), max_epochs=1).fit()
    assert seen and all(seen)


@pytest.mark.parametrize("interval", [0, -1.0, True, "1"])
def test_an_interval_that_is_not_positive_seconds_is_refused_showing_it(interval):
    with pytest.raises(ValueError) as info:
        SystemMonitor(interval=interval)
    assert str(info.value) == (
        f"Invalid value for argument `interval`. Received: interval={interval!r}; expected seconds > 0"
    )


def test_without_psutil_the_callback_and_the_config_check_name_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # Python's mark of a module that cannot be imported
    hint = "expresso.callbacks.SystemMonitor needs the psutil package, which is not installed: pip install torch-expresso[monitor]"
    with pytest.raises(ImportError) as info:
        SystemMonitor()
    assert str(info.value) == hint
    _, problems = check(
        {"callbacks": [{"class": "expresso.callbacks.SystemMonitor", "interval": 1.0}]}, lambda p: "exp.yaml"
    )
    assert [str(problem) for problem in problems] == [f"exp.yaml: callbacks.0.class: {hint}"]


def test_with_psutil_the_config_check_passes():
    _, problems = check(
        {"callbacks": [{"class": "expresso.callbacks.SystemMonitor", "interval": 0.5}]}, lambda p: "exp.yaml"
    )
    assert problems == []


def fake_nvml(calls: list[str]) -> types.ModuleType:
    """A driver with three GPUs: GPU i is (i + 1) * 10 % busy with (i + 1) * 100 MiB used; GPU-c is index 2's UUID.

    No machine of the test suite has a GPU: this stands in for nvidia-ml-py's module to check which GPUs are read
    and under what names (a machine with one runs the test above with the real library).
    """
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = type("NVMLError", (Exception,), {})
    nvml.nvmlInit = lambda: calls.append("init")
    nvml.nvmlShutdown = lambda: calls.append("shutdown")
    nvml.nvmlDeviceGetCount = lambda: 3
    nvml.nvmlDeviceGetHandleByIndex = lambda index: index
    nvml.nvmlDeviceGetHandleByUUID = lambda uuid: {"GPU-c": 2}[uuid]
    nvml.nvmlDeviceGetIndex = lambda handle: handle
    nvml.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(gpu=(handle + 1) * 10)
    nvml.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(used=(handle + 1) * 100 * MIB)
    return nvml


@pytest.mark.parametrize("visible", ["2,0", "GPU-c,0", None])
def test_the_gpus_cuda_makes_visible_are_logged_by_their_driver_index(make_trainer, monkeypatch, visible):
    calls: list[str] = []
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(calls))
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    reads = ReadsTheMachine()
    make_trainer(SystemMonitor(interval=0.01), reads, max_epochs=1).fit()
    gpus = {key: value for key, value in reads.metrics[0].items() if GPU_KEY.fullmatch(key)}
    indices = [0, 1, 2] if visible is None else [0, 2]
    assert gpus == {
        **{f"system/gpu{i}_util_percent": (i + 1) * 10.0 for i in indices},
        **{f"system/gpu{i}_memory_mib": (i + 1) * 100.0 for i in indices},
    }
    assert calls == ["init", "shutdown"]  # released when the fit ends
