"""More than one process: ``expresso train`` starts itself again through torchrun's elastic agent, or joins the group it runs in.

``trainer.devices`` > 1 (or ``num_nodes`` > 1) on a command started by hand:
the process checks the config, then hands the same command line to
``torch.distributed.launcher.api.elastic_launch`` (what ``torchrun`` runs),
one worker per device, and waits. Its rendezvous and the workers' process
group meet through files in a scratch folder (``c10d`` with
``store_type=file``, ``EXPRESSO_DIST_STORE``): nothing listens on a network
interface, and gloo is told to use loopback. Several machines
(``num_nodes`` > 1) are started the way torchrun always starts them, one
``torchrun --nnodes N ... -m expresso train ...`` per machine: the command
then finds torchrun's ``RANK``/``WORLD_SIZE`` and joins the group as it is.

In the group, rank 0 runs the command as one process would: it decides the
run folder (creating it, or resuming the run a ``--run-id`` holds, under the
folder's lock) and tells the others (``announce``); they train with it
(follow.py) and write nothing. An error on one rank stops them all: torchrun
ends the others, whose errors about the missing peer are not printed
(``quiet_peers``), so the error is shown once; the launching process exits
with the status of the rank that failed first (2 for bad input, 1 otherwise).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import tempfile
import uuid
from argparse import Namespace
from collections.abc import Callable
from typing import Any

from . import UsageError


def world_started() -> bool:
    """Whether torchrun (or another launcher) started this process as one rank of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def processes(settings: Any) -> int:
    """The processes ``trainer.devices`` starts on this machine."""
    import torch

    from ..engine.distributed import local_processes

    return local_processes(settings["devices"], settings["device"], torch.cuda.device_count())


def start(args: Namespace, settings: Any, follower: Callable[[Namespace], int]) -> int | None:
    """Launch the workers (their exit status), join the group as a ``follower`` (its status), or None: rank 0 or one process goes on."""
    if world_started():
        return _join(args, settings, follower)
    if processes(settings) == 1 and settings["num_nodes"] == 1:
        return None
    if settings["num_nodes"] > 1:
        raise UsageError(
            f"trainer.num_nodes={settings['num_nodes']}: start the command on each machine under torchrun "
            f"(torchrun --nnodes {settings['num_nodes']} --nproc-per-node {processes(settings)} ... -m expresso train ...); "
            "expresso launches the processes of one machine only"
        )
    return _launch(args, settings)


def _launch(args: Namespace, settings: Any) -> int:
    """Run ``expresso`` with the same arguments in one worker per device, under torchrun's elastic agent; their exit status."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from ..callbacks.preemption import EXIT_PREEMPTED
    from ..engine.distributed import DEVICES_VARIABLE, STORE_VARIABLE

    count = processes(settings)
    scratch = tempfile.mkdtemp(prefix="expresso-group-")
    # Loopback only: a file store for the agent and the workers, gloo's sockets on lo; the agent shares no TCP store.
    os.environ[STORE_VARIABLE] = os.path.join(scratch, "workers")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo0" if sys.platform == "darwin" else "lo")
    os.environ["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // count)))  # torchrun's default is 1
    if isinstance(settings["devices"], list):
        os.environ[DEVICES_VARIABLE] = ",".join(str(index) for index in settings["devices"])
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=count,
        run_id=f"expresso-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint=os.path.join(scratch, "rendezvous"),
        rdzv_configs={"store_type": "file"},
        local_addr="127.0.0.1",
        max_restarts=0,
        monitor_interval=0.1,
    )
    command = ["-m", "expresso", *args.argv]
    # The agent logs each worker it stops and each failure: the failed worker's own error says it once.
    for name in [name for name in logging.root.manager.loggerDict if name.startswith("torch.distributed.elastic")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)  # each has its own level (torch's get_logger)
    try:
        elastic_launch(config, sys.executable)(*command)
    except SignalException as stopped:  # Ctrl-C or SIGTERM to this process: the agent passed it on to the workers
        # they checkpoint and stop as one process does (interrupted): the status one process would end with
        return {signal.SIGINT: 130, signal.SIGTERM: EXIT_PREEMPTED}.get(stopped.sigval, 128 + int(stopped.sigval))
    except ChildFailedError as failed:
        rank, failure = _telling_failure(failed.failures)
        code = failure.exitcode
        if code < 0:  # killed by a signal: say which, as a shell would count it
            print(f"expresso: worker rank {rank} was killed by signal {-code}", file=sys.stderr)
            return 128 - code
        return code
    finally:
        _remove_tree(scratch)
    return 0


def _join(args: Namespace, settings: Any, follower: Callable[[Namespace], int]) -> int | None:
    """Under torchrun: join the process group; a follower (rank > 0) trains with rank 0 here, rank 0 goes on (None)."""
    from ..engine import distributed
    from ..engine.devices import resolve_device

    world = distributed.launched()
    if isinstance(settings["devices"], int) and settings["devices"] != world.local_world_size:
        _refuse(
            f"trainer.devices={settings['devices']}, but torchrun started {world.local_world_size} process(es) "
            "on this machine (--nproc-per-node); expected them to agree (or trainer.devices: null under torchrun)"
        )
    if settings["strategy"] == "single":
        _refuse(f"trainer.strategy='single', but torchrun started {world.world_size} processes; expected ddp or auto")
    if settings["num_nodes"] * world.local_world_size != world.world_size:
        _refuse(
            f"trainer.num_nodes={settings['num_nodes']}, but torchrun started {world.world_size} process(es), "
            f"{world.local_world_size} per machine; expected trainer.num_nodes={world.world_size // world.local_world_size}"
        )
    distributed.setup(resolve_device(distributed.local_device(settings["device"], world)))
    atexit.register(distributed.teardown)
    quiet_peers()
    return None if world.rank == 0 else follower(args)


def _telling_failure(failures: dict) -> tuple[int, Any]:
    """The failure whose exit status the command takes: an outside signal's, else rank 0's, else the lowest rank's.

    Several ranks may have failed when the agent looks (every 0.1 s), with failures stamped to the second: rank 0
    refusing a run (exit 2) makes rank 1 fail too (exit 1, its peer went away, or SIGTERM, the agent stopping it), so
    the first by time is a toss-up. A worker the agent stopped with SIGTERM tells nothing (unless all were); then a
    signal from outside (what a shell would report), then rank 0 (the one that says why).
    """
    told = [rank for rank in sorted(failures) if failures[rank].exitcode != -signal.SIGTERM] or sorted(failures)
    killed = [rank for rank in told if failures[rank].exitcode < 0]
    rank = killed[0] if killed else 0 if 0 in told else told[0]
    return rank, failures[rank]


def _refuse(message: str) -> None:
    """Every rank refuses the same settings: rank 0 says why (exit 2), the others end with the same status in silence."""
    if int(os.environ.get("RANK", "0")) == 0:
        raise UsageError(message)
    raise SystemExit(2)


def announce(mode: str, run_dir: Any) -> None:
    """Rank 0 tells the other ranks what it does (``start`` or ``resume``) and in which run folder; one process: nothing."""
    from ..engine import distributed

    if distributed.active():
        distributed.broadcast((mode, str(run_dir)))


def described_world() -> dict[str, Any]:
    """What run.json says of the processes: ``processes`` and the ``backend``, when there are several."""
    from ..engine import distributed

    if not distributed.active():
        return {}
    import torch.distributed as dist

    return {"processes": distributed.world_size(), "backend": dist.get_backend()}


def quiet_peers() -> None:
    """An error that only says another rank went away is not printed (that rank printed its own): exit status 1."""
    from ..engine.distributed import peer_failed

    shown = sys.excepthook

    def hook(kind, exc, traceback) -> None:
        if not peer_failed(exc):
            shown(kind, exc, traceback)

    sys.excepthook = hook


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
