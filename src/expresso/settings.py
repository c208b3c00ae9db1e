"""The typed settings of a run: the ``trainer`` and ``dataloader`` sections, defaults and rules in one place.

A torch-free leaf: the config layer validates a config's sections against
these dataclasses (config/validation.py reads each field's rules from its
metadata), and the engine receives them as typed objects
(``trainer.settings.max_epochs``), so neither imports the other.

The keys stay flat under ``trainer:`` and ``dataloader:``; the comments in
``TrainerConfig`` group them by what they govern. A key that moved to
another section (``moved``) is refused where it was, naming where it went;
null, what run folders written before the move hold (defaults are filled
into config.yaml), still passes, since it sets nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal


def _device(value: str) -> str | None:
    if re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        return None
    return "expected auto, cpu, cuda, cuda:N or mps"


def _devices(value: int | list[int] | str) -> str | None:
    if isinstance(value, int) and value < 1:
        return "expected a number of processes >= 1, a list of CUDA device indices, auto or null"
    if isinstance(value, list) and (not value or min(value) < 0 or len(set(value)) < len(value)):
        return "expected a non-empty list of distinct CUDA device indices (0, 1, ...)"
    return None


def _strategy(value: str) -> str | None:
    if value == "fsdp":
        return "expected auto, single or ddp: fsdp (FSDP2) is not supported yet; ddp trains a model that fits on one device"
    return None


def _batches(value: float) -> str | None:
    """An integer counts batches, a float is a fraction of them (Lightning's limit_batches): 2 is two batches, 1.0 all."""
    if isinstance(value, int) and value >= 1 or isinstance(value, float) and 0 < value <= 1:
        return None
    return "expected a number of batches (an integer >= 1) or a fraction of them (a float in (0, 1], 1.0: all)"


def setting(default, *, min=None, max=None, check=None, reserved=None, doc=""):  # noqa: A002 - mirrors the rule's name
    """A dataclass field with its validation rules kept beside its default.

    ``reserved`` (a reason) marks a setting kept for a feature not built yet:
    any value but null is refused with that reason, never accepted and ignored.
    """
    meta = {"min": min, "max": max, "check": check, "reserved": reserved, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainerConfig:
    """How long and where to train, on what batches, and what "best" means."""

    # -- how long: epochs and steps --------------------------------------------------
    max_epochs: int = setting(10, min=1, doc="epochs to train")
    max_steps: int | None = setting(None, min=1, doc="stop after this many optimizer steps (overrides max_epochs)")
    limit_epochs: int | None = setting(None, min=1, doc="train at most N epochs per stage (--dev-run sets 1)")
    limit_batches: float | None = setting(
        None,
        check=_batches,
        doc="per epoch, at most N batches (an integer) or a fraction (0, 1] of each split's batches (--dev-run sets it)",
    )
    # -- batches and randomness -------------------------------------------------------
    batch_size: int = setting(64, min=1, doc="training batch size")
    eval_batch_size: int | None = setting(None, min=1, doc="validation/test batch size (default: batch_size)")
    seed: int = setting(
        0, min=0, max=2**32 - 1, doc="seeds python, numpy, torch and loader workers (0 to 2**32-1, numpy's range)"
    )
    # -- where: the device -----------------------------------------------------------
    device: str = setting("auto", check=_device, doc="auto, cpu, cuda, cuda:N or mps")
    devices: int | list[int] | Literal["auto"] | None = setting(
        None,
        check=_devices,
        doc="processes on this machine, one per device: a count, a list of CUDA device indices, or auto "
        "(every CUDA device, one process on a CPU); null: one. More than one: DDP (docs/scale.md)",
    )
    num_nodes: int = setting(
        1, min=1, doc="machines, each running trainer.devices processes (start each under torchrun)"
    )
    strategy: Literal["auto", "single", "ddp", "fsdp"] = setting(
        "auto",
        check=_strategy,
        doc="auto (ddp when there is more than one process), single (one process), ddp; fsdp is not supported yet",
    )
    compile: bool | Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = setting(
        False,
        doc="torch.compile every model (true, or a torch.compile mode); opt-in: the first steps pay for compiling",
    )
    # -- the step: precision, accumulation, clipping, memory format -----------------
    precision: Literal[32, "32", "32-true", "bf16-mixed", "16-mixed"] = setting(
        "32-true",
        doc="32-true (or 32): float32; bf16-mixed / 16-mixed: forward and loss under torch.autocast in bfloat16 / "
        "float16 (16-mixed scales the loss with a GradScaler, kept in checkpoints); the weights stay float32",
    )
    accumulate_grad_batches: int = setting(
        1,
        min=1,
        doc="sum the gradients of N batches (each loss divided by N) before each optimizer step; steps count optimizer "
        "steps, and an epoch's last batches step even when fewer than N",
    )
    gradient_clip_val: float | None = setting(
        None,
        min=0,
        doc="clip the gradients before every optimizer step (null or 0: no clipping); the shorthand for each "
        "optimizer's clip_grad_norm / clip_grad_value",
    )
    gradient_clip_algorithm: Literal["norm", "value"] = setting(
        "norm",
        doc="how gradient_clip_val clips: norm (the total norm of each optimizer's gradients) or value (each value)",
    )
    channels_last: bool = setting(
        False, doc="models and 4-D input tensors in the channels_last memory format (faster convolutions on GPUs)"
    )
    # -- validation and what "best" means --------------------------------------------
    val_every_n_epochs: int = setting(1, min=1, doc="validate every N epochs")
    validate_before_fit: bool = setting(False, doc="run one validation pass before training (a sanity check)")
    monitor: str = setting("val/loss", doc="metric that picks the best checkpoint")
    mode: Literal["min", "max"] = setting("min", doc="whether a lower or a higher monitored value is better")
    # -- the record ------------------------------------------------------------------
    log_every_n_steps: int = setting(50, min=1, doc="write a training row to the history every N steps")
    # -- a loss that diverges ---------------------------------------------------------
    stop_on_non_finite: bool = setting(
        True,
        doc="fail the run when an epoch's training loss, or the weights a checkpoint would hold, are NaN or infinite "
        "(checked once per epoch and per checkpoint; NaNGuard checks every step)",
    )
    # -- the job: restarts and requeues ----------------------------------------------
    auto_resume: bool = setting(
        False, doc="train on a --run-id folder that holds an unfinished run resumes it (what --resume-if-exists does)"
    )
    requeue: bool = setting(False, doc="on SIGTERM/SIGUSR1 under SLURM, after the checkpoint: scontrol requeue the job")


@dataclass
class DataLoaderConfig:
    """torch.utils.data.DataLoader settings shared by every split (the batch sizes are ``trainer``'s)."""

    # Keys that moved to another section: the key -> where it is now.
    moved: ClassVar[Mapping[str, str]] = {"eval_batch_size": "trainer.eval_batch_size"}

    shuffle: bool = setting(True, doc="shuffle the training split each epoch")
    num_workers: int | Literal["auto"] = setting(
        "auto",
        min=0,
        doc="loader worker processes (auto: none for in-memory datasets indexed a batch at a time, else one per CPU up to 8)",
    )
    pin_memory: bool | Literal["auto"] = setting("auto", doc="pin host memory (auto: when training on CUDA)")
    persistent_workers: bool | Literal["auto"] = setting("auto", doc="keep workers alive between epochs (auto: yes)")
    prefetch_factor: int | None = setting(None, min=1, doc="batches each worker loads ahead")
    drop_last: bool = setting(False, doc="drop the last incomplete training batch")


# Settings whose rules the Python API applies too: the engine would read them and do something else (fsdp: DDP).
_CHECKED_IN_PYTHON = ("devices", "strategy")


def moved_message(cls: type, key: str) -> str | None:
    """Why ``key`` of ``cls``'s section is refused because it moved (None: it did not move)."""
    target = getattr(cls, "moved", {}).get(key)
    return f"this setting moved to {target}: write it there" if target else None


def from_mapping(cls: type, given: Any) -> Any:
    """``given`` (None, a mapping or a ``cls``) as a ``cls``: what the Python API takes where a config gives a section.

    Refused as ``--check`` refuses them (a TypeError naming the key): an
    unknown key, a moved key with a value, a reserved setting with a value.
    """
    if given is None:
        return cls()
    if isinstance(given, cls):
        values = {f.name: getattr(given, f.name) for f in dataclasses.fields(cls)}
    else:
        values = dict(given)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in [key for key in values if key not in fields]:
        moved = moved_message(cls, key)
        if moved and values[key] is None:
            del values[key]  # null sets nothing: what older run folders' config.yaml hold
        elif moved:
            raise TypeError(f"{cls.__name__} setting {key!r}: received {values[key]!r}, but {moved}")
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise TypeError(f"unknown {cls.__name__} setting(s): {unknown}")
    for key, value in values.items():
        reason = fields[key].metadata.get("reserved")
        if reason and value is not None:
            raise TypeError(f"{cls.__name__} setting {key!r}: received {value!r}, expected null: {reason}")
        check = fields[key].metadata.get("check")
        if key in _CHECKED_IN_PYTHON and check and value is not None and (message := check(value)):
            raise TypeError(f"{cls.__name__} setting {key!r}: received {value!r}, {message}")
    return cls(**values)
