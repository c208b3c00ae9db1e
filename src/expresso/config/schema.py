"""The typed schema of expresso's own config sections, and the shape of a config.

Why plain dataclasses with a small validator (validation.py) rather than
pydantic or OmegaConf structured configs: the rules we need are few (types,
ranges, choices, unknown keys), every error must name the file a value came
from, which only our composer knows, and ``expresso config`` must start in a
blink. Pydantic is a heavy import whose messages we would have to re-map;
OmegaConf structured configs check types but not ranges and report
OmegaConf's key paths without files. Dataclasses give typed Python objects
(``TrainerConfig(**config["trainer"])``) and the defaults in one place.

A config's root keys fall into a few kinds:

- components: one mapping with a ``class`` key (dataset, model, loss,
  optimizer, scheduler, step, predict: the hook ``expresso predict`` passes
  outputs and extra arguments to); ``scheduler`` may also be a list, and each of
  its entries may carry ``interval: epoch|step`` (SECTION_KEYS);
- collections of components: ``metrics`` (name -> component),
  ``callbacks`` (list), ``loggers`` (list of names or components), and for
  several models ``models``, ``datasets``, ``losses``, ``optimizers`` (name ->
  component);
- the wiring of several models: ``graph``, ``pipelines``, ``stages``
  (config/wiring.py);
- ``task``: plain values injected into the components that take them;
- settings: ``trainer`` and ``dataloader``, typed below;
- ``name``: the experiment's name (defaults to the config file's stem);
- ``init_from``: ``RUN_DIR[:best|last]``, start from another run's weights.

Every one of those keys, and each entry of a collection, may instead hold a
file reference (``model: ../models/mlp.yaml``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

COMPONENTS = ("dataset", "model", "loss", "optimizer", "scheduler", "step", "predict")
COLLECTIONS = {
    "metrics": dict,
    "callbacks": list,
    "loggers": list,
    "models": dict,
    "datasets": dict,
    "losses": dict,
    "optimizers": dict,
}
# The wiring of several models (config/wiring.py): graph nodes, pipelines, stages.
STRUCTURES = {"graph": list, "pipelines": dict, "stages": list}
VALUES = ("task",)
# Components that receive task values (task injection).
TASK_TARGETS = ("dataset", "model", "metrics", "models", "datasets")
# Loggers that exist today; the trackers (tensorboard, mlflow, ...) join as they are built.
BUILTIN_LOGGERS = ("csv",)
# Framework keys a section's component may carry besides the callable's arguments.
SECTION_KEYS = {"scheduler": {"interval": ("epoch", "step")}}
# Keys inside a component mapping that are not keyword arguments.
CLASS_KEY, ARGS_KEY, PARTIAL_KEY = "class", "_args_", "_partial_"
RESERVED_KEYS = (CLASS_KEY, ARGS_KEY, PARTIAL_KEY)


def _device(value: str) -> str | None:
    if re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        return None
    return "expected auto, cpu, cuda, cuda:N or mps"


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
    """How long and where to train, and what "best" means."""

    max_epochs: int = setting(10, min=1, doc="epochs to train")
    max_steps: int | None = setting(None, min=1, doc="stop after this many optimizer steps (overrides max_epochs)")
    batch_size: int = setting(64, min=1, doc="training batch size")
    seed: int = setting(0, min=0, doc="seeds python, numpy, torch and loader workers")
    device: str = setting("auto", check=_device, doc="auto, cpu, cuda, cuda:N or mps")
    devices: int | list[int] | None = setting(
        None,
        reserved="multi-device training is not supported yet; trainer.device picks the one device to train on (auto, cpu, cuda, cuda:N or mps)",
        doc="reserved for multi-device training (not supported yet): must stay null",
    )
    monitor: str = setting("val/loss", doc="metric that picks the best checkpoint")
    mode: Literal["min", "max"] = setting("min", doc="whether a lower or a higher monitored value is better")
    val_every_n_epochs: int = setting(1, min=1, doc="validate every N epochs")
    validate_before_fit: bool = setting(False, doc="run one validation pass before training (a sanity check)")
    log_every_n_steps: int = setting(50, min=1, doc="write a training row to the history every N steps")
    limit_batches: float | None = setting(
        None,
        check=_batches,
        doc="per epoch, at most N batches (an integer) or a fraction (0, 1] of each split's batches (--dev-run sets it)",
    )
    limit_epochs: int | None = setting(None, min=1, doc="train at most N epochs per stage (--dev-run sets 1)")
    auto_resume: bool = setting(
        False, doc="train on a --run-id folder that holds an unfinished run resumes it (what --resume-if-exists does)"
    )
    requeue: bool = setting(False, doc="on SIGTERM/SIGUSR1 under SLURM, after the checkpoint: scontrol requeue the job")
    compile: bool | Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = setting(
        False,
        doc="torch.compile every model (true, or a torch.compile mode); opt-in: the first steps pay for compiling",
    )


@dataclass
class DataLoaderConfig:
    """torch.utils.data.DataLoader settings shared by every split."""

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
    eval_batch_size: int | None = setting(None, min=1, doc="validation/test batch size (default: batch_size)")


SETTINGS = {"trainer": TrainerConfig, "dataloader": DataLoaderConfig}
ROOT_KEYS = ("name", "init_from", *COMPONENTS, *VALUES, *COLLECTIONS, *STRUCTURES, *SETTINGS)


def is_reference_slot(path: tuple) -> bool:
    """Whether a string at this key path may be a file reference."""
    if len(path) == 1:
        return path[0] in ROOT_KEYS and path[0] not in ("name", "init_from")
    return len(path) == 2 and (path[0] in COLLECTIONS or path[0] == "scheduler")
