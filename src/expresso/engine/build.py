"""From a checked config to a ready Trainer: the only place that knows the config's sections.

- ``dataset`` is built once per split (``split="train"|"val"|"test"``) when
  it takes a ``split`` argument; otherwise it is the training data only.
- ``optimizer`` receives the model's parameters, ``scheduler`` (one or a
  list, each with ``interval: epoch|step``) its optimizer, through the
  ``LRScheduler`` callback.
- Dependency injection by name: a metric, callback or ``step`` whose
  signature asks for ``model``, ``task``, ``run_dir`` or ``logger`` (and
  whose config does not set it) receives it.
- Default callbacks: model summary, progress, history (the ``csv`` logger)
  and checkpoints by ``trainer.monitor``/``mode``; a configured callback of
  the same class replaces the default one.
- ``init_from: RUN_DIR[:best|last]`` loads another run's weights (only).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..config import Config, ConfigError, Problem, instantiate
from ..config.callables import locate
from ..config.check import signature_of
from ..config.schema import SECTION_KEYS
from .seeding import seed_everything
from .trainer import Trainer

INJECTABLE = ("model", "task", "run_dir", "logger")
SPLITS = ("train", "val", "test")


def build_trainer(
    config: Config, run_dir: Path | None, *, training: bool = True, init_weights: bool = True, extra_callbacks: tuple = ()
) -> Trainer:
    if not config.checked:
        config = config.check()
    tree = config.to_dict()
    _require_sections(config, tree, training)
    seed_everything(tree["trainer"]["seed"])  # the initial weights are part of what a seed reproduces
    logger = logging.getLogger("expresso")
    with building(config, "model"):
        model = instantiate(tree["model"])
    available = {"model": model, "task": tree["task"], "run_dir": run_dir, "logger": logger}
    data = {}
    if tree.get("dataset"):
        with building(config, "dataset"):
            data = _datasets(tree["dataset"])
    metrics = {}
    for name, node in tree["metrics"].items():
        with building(config, "metrics", name):
            metrics[name] = _build(node, available)
    callbacks = list(extra_callbacks)
    if training:
        callbacks = _callbacks(config, tree, available) + callbacks
    optimizer = tree.get("optimizer")

    def make_optimizer(params):
        with building(config, "optimizer"):
            return instantiate(optimizer, params)

    with building(config, "loss"):
        loss = instantiate(tree["loss"]) if tree.get("loss") else None
    with building(config, "step"):
        step = _build(tree["step"], available) if tree.get("step") else None
    trainer = Trainer(
        model=model,
        loss=loss,
        optimizer=make_optimizer if optimizer else None,
        train_data=data.get("train"),
        val_data=data.get("val"),
        test_data=data.get("test"),
        metrics=metrics,
        callbacks=callbacks,
        step=step,
        settings=tree["trainer"],
        dataloader=tree["dataloader"],
        run_dir=run_dir,
        config=tree,
    )
    if tree.get("init_from") and training and init_weights:
        trainer.load_checkpoint(resolve_init_from(tree["init_from"], config), weights_only=True)
        logger.info("initialised weights from %s", tree["init_from"])
    return trainer


def _require_sections(config: Config, tree: dict, training: bool) -> None:
    """Training needs a model, a dataset, an optimizer and a loss (or a ``step`` that computes it)."""
    needed = ["model", "dataset"]
    if training:
        needed += ["optimizer"] + ([] if tree.get("step") else ["loss"])
    missing = [key for key in needed if not tree.get(key)]
    if missing:
        where = config.where(())
        raise ConfigError([Problem(where, key, "missing: training needs this section") for key in missing])


@contextlib.contextmanager
def building(config: Config, *path: Any) -> Iterator[None]:
    """A component that rejects its configured arguments is bad input: name the file and key."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = f"building it raised {type(exc).__name__}: {first}" if first else f"building it raised {type(exc).__name__}"
        raise ConfigError([Problem(config.where(path), ".".join(map(str, path)), message)]) from exc


def _datasets(node: dict) -> dict[str, Any]:
    sig = signature_of(locate(node["class"]))
    if sig is None or "split" not in sig.parameters or "split" in node:
        return {"train": instantiate(node)}
    return {split: instantiate(node, split=split) for split in SPLITS}


def _build(node: dict, available: Mapping[str, Any]) -> Any:
    """Instantiate a component, injecting the runtime objects its signature asks for."""
    sig = signature_of(locate(node["class"]))
    wanted = {}
    if sig is not None:
        wanted = {name: available[name] for name in INJECTABLE if name in sig.parameters and name not in node}
    return instantiate(node, **wanted)


def _callbacks(config: Config, tree: dict, available: Mapping[str, Any]) -> list:
    from ..callbacks import Checkpoint, History, LRScheduler, ModelSummary, Progress

    settings = tree["trainer"]
    defaults = [ModelSummary(), Progress(), Checkpoint(monitor=settings["monitor"], mode=settings["mode"])]
    if "csv" in tree["loggers"]:
        defaults.append(History(log_every_n_steps=settings["log_every_n_steps"]))
    configured = []
    for index, node in enumerate(tree["callbacks"]):
        with building(config, "callbacks", index):
            configured.append(_build(node, available))
    replaced = {type(cb) for cb in configured}
    callbacks = [cb for cb in defaults if type(cb) not in replaced] + configured
    scheduler = tree.get("scheduler")
    if scheduler:
        entries = scheduler if isinstance(scheduler, list) else [scheduler]
        by_interval: dict[str, list] = {}
        for entry in entries:
            node = {k: v for k, v in entry.items() if k not in SECTION_KEYS["scheduler"]}
            by_interval.setdefault(entry.get("interval", "epoch"), []).append(
                lambda optimizer, node=node: instantiate(node, optimizer)
            )
        for interval, builders in by_interval.items():
            callbacks.append(LRScheduler(builders, interval=interval, monitor=settings["monitor"]))
    return callbacks


def resolve_init_from(value: str, config: Config) -> Path:
    """``RUN_DIR``, ``RUN_DIR:best``, ``RUN_DIR:last`` or a checkpoint file -> the checkpoint path."""
    target, _, which = value.rpartition(":") if value.rsplit(":", 1)[-1] in ("best", "last") else (value, "", "")
    path = Path(target)
    if path.is_dir():
        path = path / "checkpoints" / f"{which or 'best'}.ckpt"
    if not path.is_file():
        raise ConfigError([Problem(config.where(("init_from",)), "init_from", f"no checkpoint at {str(path)!r} (expected RUN_DIR[:best|last] or a .ckpt file)")])
    return path
