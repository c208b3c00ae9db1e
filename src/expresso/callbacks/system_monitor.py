"""System metrics beside the training's own: CPU, memory, disk I/O and GPU, sampled in a background thread.

A slow epoch says little by itself; beside it, a CPU at 100 % (the data
loader), a growing RSS (a leak) or an idle GPU says why. ``SystemMonitor``
samples the machine every ``interval`` seconds in a daemon thread and, at
each epoch's end, writes the epoch's values into ``state.metrics`` under
``system/...``: from there they reach metrics.csv and every logger in the
epoch's row, as any value a callback adds does (``EPOCH_CHECKPOINT`` records
them after every ``EPOCH_END`` handler).

The thread never touches the loop's state and the loop never waits for it:
samples go into a deque (appends and pops are atomic), so no lock is held
during a step. It is a daemon and is stopped at the fit's end and when the
fit raises, so it never keeps the process alive. psutil reads the machine
(``pip install torch-expresso[monitor]``); nvidia-ml-py, when importable and
a GPU answers, adds each visible GPU's utilisation and memory.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from typing import Any

from ..config.loggers import missing_extra
from ..engine.callback import Callback
from ..engine.state import State

log = logging.getLogger("expresso")

MIB = 1024 * 1024
PREFIX = "system/"
# Mean over the epoch's samples (gauges); the disk's are bytes moved during the epoch (counters).
CPU, RAM, RSS = "system/cpu_percent", "system/ram_used_mib", "system/rss_mib"
DISK_READ, DISK_WRITE = "system/disk_read_mib", "system/disk_write_mib"


def gpu_keys(index: int) -> tuple[str, str]:
    """The names of GPU ``index``'s utilisation (%) and memory used (MiB)."""
    return f"system/gpu{index}_util_percent", f"system/gpu{index}_memory_mib"


class SystemMonitor(Callback):
    """Logs CPU %, RAM used, the process's RSS, disk I/O and (with nvidia-ml-py and a GPU) GPU utilisation and memory.

    A daemon thread samples every ``interval`` seconds; each epoch's row
    gets the mean of that epoch's samples (``system/cpu_percent``,
    ``system/ram_used_mib``, ``system/rss_mib``, and per GPU N
    ``system/gpuN_util_percent``, ``system/gpuN_memory_mib``) and the MiB
    the machine's disks read and wrote during the epoch
    (``system/disk_read_mib``, ``system/disk_write_mib``; absent where
    the system reports no disk counters). An epoch shorter than
    ``interval`` gets one sample taken at its end. GPUs are those in
    ``CUDA_VISIBLE_DEVICES`` when it is set, else every GPU the driver
    lists; N is the driver's index.

    Args:
        interval: seconds between samples (> 0).
    """

    rank_zero_only = True  # it writes: rank 0 alone runs it (engine/distributed.py)

    order = -10  # its values are in state.metrics before other epoch-end handlers (a watcher may monitor them)
    phases = ("fit",)
    provides = (CPU, RAM, RSS, DISK_READ, DISK_WRITE)
    # (module, extra): `expresso config --check` refuses the component when the module is missing
    extras_needed = (("psutil", "monitor"),)

    def __init__(self, interval: float = 1.0):
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
            raise ValueError(
                f"Invalid value for argument `interval`. Received: interval={interval!r}; expected seconds > 0"
            )
        message = missing_extra("psutil", "monitor", "expresso.callbacks.SystemMonitor")
        if message:
            raise ImportError(message)
        self.interval = float(interval)
        self._samples: collections.deque[dict[str, float]] = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: Any = None
        self._gpus: list[tuple[int, Any]] = []
        self._nvml: Any = None
        self._disk_start: Any = None

    # -- the events --------------------------------------------------------------------------------------
    def on_fit_start(self, state: State) -> None:
        import psutil

        self._process = psutil.Process()
        psutil.cpu_percent(interval=None)  # the first reading is meaningless: it starts the measured interval
        self._gpus = self._open_gpus()
        self._samples.clear()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample_until_stopped, name="expresso-system-monitor", daemon=True)
        self._thread.start()

    def on_epoch_start(self, state: State) -> None:
        self._disk_start = _disk_counters()
        self._samples.clear()  # samples taken after the last epoch's end (its checkpoint writes) belong to no epoch

    def on_epoch_end(self, state: State) -> None:
        samples = []
        while self._samples:
            samples.append(self._samples.popleft())
        if not samples:
            samples.append(self.sample())
        keys = dict.fromkeys(key for sample in samples for key in sample)
        for key in keys:
            values = [sample[key] for sample in samples if key in sample]
            state.metrics[key] = sum(values) / len(values)
        end = _disk_counters()
        if self._disk_start is not None and end is not None:
            state.metrics[DISK_READ] = (end.read_bytes - self._disk_start.read_bytes) / MIB
            state.metrics[DISK_WRITE] = (end.write_bytes - self._disk_start.write_bytes) / MIB

    def on_fit_end(self, state: State) -> None:
        self.stop()

    def on_exception(self, state: State) -> None:
        self.stop()

    # -- sampling ----------------------------------------------------------------------------------------
    def sample(self) -> dict[str, float]:
        """One reading of every value: CPU % since the last reading, memory and each GPU now."""
        import psutil

        values = {
            CPU: psutil.cpu_percent(interval=None),
            RAM: psutil.virtual_memory().used / MIB,
            RSS: self._process.memory_info().rss / MIB,
        }
        for index, handle in self._gpus:
            util, memory = gpu_keys(index)
            try:
                values[util] = float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                values[memory] = self._nvml.nvmlDeviceGetMemoryInfo(handle).used / MIB
            except self._nvml.NVMLError:  # a GPU that stopped answering (reset, lost): its values are left out
                continue
        return values

    def stop(self) -> None:
        """Stop the sampling thread and release the GPU library (also safe when it never started)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=max(5.0, 2 * self.interval))
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass
            self._nvml, self._gpus = None, []

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._samples.append(self.sample())
            except Exception as exc:  # a monitor must never end a training: say it once, stop sampling
                log.warning("expresso: warning: SystemMonitor stopped sampling: %s: %s", type(exc).__name__, exc)
                return

    def _open_gpus(self) -> list[tuple[int, Any]]:
        """(driver index, handle) of each GPU to watch; none without nvidia-ml-py, a driver or a GPU."""
        try:
            import pynvml
        except ImportError:
            return []
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError:  # no driver, no GPU: the machine's other values are still logged
            return []
        self._nvml = pynvml
        try:
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if visible is None:
                return list(enumerate(handles))
            chosen = []
            for item in (part.strip() for part in visible.split(",") if part.strip()):
                if item.isdigit() and int(item) < len(handles):
                    chosen.append((int(item), handles[int(item)]))
                elif not item.isdigit():  # a UUID (GPU-...), as CUDA_VISIBLE_DEVICES may name them
                    handle = pynvml.nvmlDeviceGetHandleByUUID(item)
                    chosen.append((pynvml.nvmlDeviceGetIndex(handle), handle))
            return chosen
        except pynvml.NVMLError as exc:
            log.warning("expresso: warning: SystemMonitor cannot read the GPUs (%s): only CPU, memory and disk", exc)
            return []


def _disk_counters() -> Any:
    """The machine's disk byte counters (None where the system reports none, as in some containers)."""
    import psutil

    try:
        return psutil.disk_io_counters()
    except (OSError, RuntimeError):
        return None
