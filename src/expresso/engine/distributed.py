"""Several processes training one model: the process group, which rank this is, DDP around the models.

torchrun (or ``expresso train`` launching itself through torchrun's elastic
agent: commands/launch.py) starts one process per device and tells each its
place in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``.
``setup`` joins the process group from them: NCCL on CUDA, gloo on the CPU.
The group meets through ``env://`` (torchrun's ``MASTER_ADDR``/``MASTER_PORT``)
unless ``EXPRESSO_DIST_STORE`` names a folder on a filesystem every process
sees: then through a file there (``file://``), which opens no socket at all,
so a run on one machine listens on nothing beyond loopback (gloo's own
connections follow ``GLOO_SOCKET_IFNAME``). Each elastic restart gets its
own file: a killed round's file holds stale keys.

Rank 0 alone writes the run folder (the callbacks that write say
``rank_zero_only``); every rank trains, validates on its shard and reads the
checkpoints rank 0 wrote. Models are wrapped in ``DistributedDataParallel``
only where the graph calls them (``graph.callables``): ``graph.models``
keep the plain modules, so a checkpoint holds plain state dicts that load at
any world size, in one process too.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

STORE_VARIABLE = "EXPRESSO_DIST_STORE"
DEVICES_VARIABLE = "EXPRESSO_DEVICE_IDS"  # the launcher's trainer.devices list: local rank i trains on cuda:ids[i]


@dataclass(frozen=True)
class World:
    """Where this process stands among those of its run (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def several(self) -> bool:
        return self.world_size > 1


def launched() -> World:
    """The world torchrun's variables describe (rank 0 of 1 when there are none)."""
    env = os.environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return World()
    world = int(env["WORLD_SIZE"])
    return World(
        rank=int(env["RANK"]),
        world_size=world,
        local_rank=int(env.get("LOCAL_RANK", env["RANK"])),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", world)),
    )


def active() -> bool:
    """Whether this process trains with others (a process group of more than one)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_zero() -> bool:
    """Whether this process writes the run folder: rank 0, or the only process."""
    return rank() == 0


def local_device(device_name: str, world: World) -> str:
    """The device of this local rank: on CUDA its own index (``trainer.devices`` as a list picks which); else as given."""
    if device_name in ("auto", "cuda") and torch.cuda.is_available():
        ids = os.environ.get(DEVICES_VARIABLE)
        index = [int(i) for i in ids.split(",")][world.local_rank] if ids else world.local_rank
        torch.cuda.set_device(index)
        return f"cuda:{index}"
    return device_name


def setup(device: torch.device) -> None:
    """Join the process group torchrun's variables describe (nothing with one process, or when joined already)."""
    world = launched()
    if not world.several or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    store = os.environ.get(STORE_VARIABLE)
    if store:
        os.makedirs(store, exist_ok=True)
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        init_method = f"file://{os.path.abspath(os.path.join(store, f'group-{restart}'))}"
    else:
        init_method = "env://"
    dist.init_process_group(backend, init_method=init_method, rank=world.rank, world_size=world.world_size)


def teardown() -> None:
    """Leave the process group (at exit), and free it while the interpreter is whole.

    The DDP wrappers hold the group (their reducer does), and the trainer that holds them sits in
    reference cycles: without the collection first, ``destroy_process_group`` only forgets the group,
    which the interpreter's last collection then frees at shutdown. A gloo worker thread that lets go
    of a tensor then needs the lock of a finalizing interpreter, which ends the thread by unwinding
    through C++ that may not unwind: SIGABRT, "terminate called without an active exception" (a worker
    rank of the docs' 2-process training in CI, now and then).

    A completed run's ranks also meet at a last barrier before they leave (session.run_fit, follow.fit):
    a rank that destroyed its group while rank 0 still wrote the record died the same way, more often.
    Not here: at exit after an error, a peer may never come.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # the unreachable trainers' DDP wrappers: the group's last holders but the world's
        dist.destroy_process_group()


def wrap(graph: Any, device: torch.device, find_unused: bool) -> None:
    """Call each trainable model through ``DistributedDataParallel``; ``graph.models`` keep the plain modules.

    DDP averages the gradients over the ranks in backward, and its
    construction copies rank 0's weights to every rank. Buffers are not
    broadcast at each forward (``broadcast_buffers=False``): evaluation runs
    on shards of unequal length, where a collective in forward would wait
    for a rank that has no batch left. ``find_unused``: some parameters get
    no gradient in some steps (a frozen model, several nodes or updates).
    """
    if not active():
        return
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    for name, model in graph.models.items():
        if not any(p.requires_grad for p in model.parameters()):
            continue  # DDP refuses a module without trainable parameters: nothing to average
        graph.callables[name] = DistributedDataParallel(
            graph.callables[name], device_ids=ids, forward_sync_buffers=False, find_unused_parameters=find_unused
        )


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every rank (after the fit: rank 0's last checkpoint is on disk before the others read it)."""
    if active():
        dist.barrier()


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over the ranks (a copy; the tensor itself with one process)."""
    if not active():
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total


def peer_failed(exc: BaseException) -> bool:
    """Whether ``exc`` says another rank went away (its own error is what to show, not this one)."""
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        sign in text for sign in ("Connection closed by peer", "Connection reset by peer", "Broken pipe")
    )


def problems(settings: Any, device_count: int | None = None) -> list[tuple[str, str]]:
    """(key, message) for each distributed setting this machine or the other settings cannot honour: ``--check`` reports them."""
    devices, strategy = settings["devices"], settings["strategy"]
    count = torch.cuda.device_count() if device_count is None else device_count
    found: list[tuple[str, str]] = []
    processes = local_processes(devices, settings["device"], count)
    if strategy == "single" and (processes > 1 or settings["num_nodes"] > 1):
        found.append(
            (
                "trainer.strategy",
                f"received 'single', but trainer.devices={devices!r} and trainer.num_nodes={settings['num_nodes']} "
                "ask for more than one process; expected ddp or auto",
            )
        )
    on_cuda = settings["device"] in ("auto", "cuda") and count > 0
    if isinstance(devices, list) and not on_cuda:
        found.append(
            (
                "trainer.devices",
                f"received {devices!r}, a list of CUDA device indices, but training is not on CUDA here "
                f"(trainer.device={settings['device']!r}, {count} CUDA device(s)); expected a number of processes",
            )
        )
    elif isinstance(devices, list) and max(devices) >= count:
        found.append(("trainer.devices", f"received {devices!r}, but this machine has {count} CUDA device(s)"))
    elif isinstance(devices, int) and devices > 1 and settings["device"].startswith(("cuda:", "mps")):
        found.append(
            (
                "trainer.devices",
                f"received {devices}, but trainer.device={settings['device']!r} names one device; "
                "expected auto or cuda (each process takes its own) or cpu",
            )
        )
    elif isinstance(devices, int) and on_cuda and devices > count:
        found.append(("trainer.devices", f"received {devices}, but this machine has {count} CUDA device(s)"))
    return found


def local_processes(devices: Any, device: str, cuda_count: int) -> int:
    """How many processes ``trainer.devices`` starts on this machine: a count, a list's length; auto: every CUDA device (else one)."""
    if devices is None:
        return 1
    if devices == "auto":
        return max(cuda_count, 1) if device in ("auto", "cuda") else 1
    return len(devices) if isinstance(devices, list) else int(devices)
