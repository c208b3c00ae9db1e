"""How one trial runs: its command line, its devices and threads, and the process (or SLURM job) that runs it.

A trial is ``python -m expresso train CONFIG OVERRIDES --run-dir TRIAL
--resume-if-exists``: an ordinary run, started or resumed in its own
folder, in the sweep's working directory (nothing changes it). Each of
the J slots running trials at once owns its devices (``--devices`` dealt
round-robin: slot k gets device k mod len(devices), as CUDA_VISIBLE_DEVICES)
and 1/J of the CPU cores (OMP_NUM_THREADS and MKL_NUM_THREADS, which torch
reads for its thread count): J trials never oversubscribe the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
LAUNCHERS = ("local", "slurm", "submitit-local")


def trial_command(config: Path, overrides: Sequence[str], run_dir: Path, passed: Sequence[str] = ()) -> list[str]:
    """The command line of one trial; ``passed``: the sweep's own train flags (--profile, --offline) passed on."""
    return [
        sys.executable,
        "-m",
        "expresso",
        "train",
        str(config),
        *overrides,
        "--run-dir",
        str(run_dir),
        "--resume-if-exists",
        *passed,
    ]


def slot_environment(slot: int, jobs: int, devices: Sequence[str] | None, cores: int | None = None) -> dict[str, str]:
    """What slot ``slot`` of ``jobs`` sets in its trials' environment: their devices and their share of the cores."""
    threads = max(1, (cores or os.cpu_count() or 1) // jobs)
    env = {name: str(threads) for name in THREAD_VARIABLES}
    if devices:
        env["CUDA_VISIBLE_DEVICES"] = devices[slot % len(devices)]
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the trial gets SIGTERM when the thread that started it dies (a killed sweep): it checkpoints and stops."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Finished:
    """How a trial's process (or job) ended: its exit status, and what it said on stderr (the last lines are shown)."""

    returncode: int
    stderr: str


class LocalLauncher:
    """Each trial a child process of the sweep; a sweep killed takes its trials down with it (they checkpoint)."""

    def run(self, command: list[str], env: dict[str, str], number: int) -> Finished:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,  # the trial's lines are in its log.txt
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 - no threads of ours run in the child
        )
        try:
            _, stderr = process.communicate()
        except BaseException:
            process.terminate()  # Ctrl-C or an error in the sweep: the trial checkpoints and records how it ended
            process.wait()
            raise
        return Finished(process.returncode, stderr)


class SubmititLauncher:
    """Each trial a SLURM job through submitit (``cluster="local"``: submitit's local executor, the same jobs on this machine)."""

    def __init__(self, folder: Path, cluster: str | None, parameters: dict):
        try:
            import submitit
        except ImportError:
            from .spec import SweepError

            raise SweepError("--launcher slurm needs submitit: pip install torch-expresso[slurm]") from None
        self.executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        self.executor.update_parameters(**parameters)

    def run(self, command: list[str], env: dict[str, str], number: int) -> Finished:
        try:
            job = self.executor.submit(_run_job, command, env)
        except Exception as exc:  # no sbatch here, a parameter SLURM refuses: one line, not a traceback per slot
            from .spec import SweepError

            raise SweepError(f"--launcher: cannot submit trial {number} ({type(exc).__name__}: {exc})") from None
        try:
            returncode, stderr = job.result()
        except (
            Exception
        ) as exc:  # the job itself failed (cancelled, out of time): the trial's record says how far it got
            return Finished(1, str(exc))
        return Finished(returncode, stderr)


def _run_job(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """What a SLURM job runs: the trial's command, in the submitting sweep's working directory."""
    result = subprocess.run(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    return result.returncode, result.stderr
