"""From a checked config to a ready Trainer, around the graph, pipelines and stages that assemble.py builds.

- ``dataset`` is built once per split (``split="train"|"val"|"test"``) when
  it takes a ``split`` argument; otherwise it is the training data only.
- ``optimizer`` receives the model's parameters, ``scheduler`` (one or a
  list, each with ``interval: epoch|step``) its optimizer, through the
  ``LRScheduler`` callback.
- ``metrics``: a torchmetrics ``Metric`` as configured; anything else
  callable (a function bound to its keys, or a class built from them whose
  instances are called) is called as ``fn(prediction, target)`` on every
  batch and reported as its batch-size-weighted mean (engine/batch_mean.py).
- Dependency injection by name: a metric, callback or ``step`` whose
  signature asks for ``model``, ``task``, ``run_dir`` or ``logger`` (and
  whose config does not set it) receives it.
- Default callbacks (callbacks/defaults.py, the list ``expresso.Trainer`` adds
  too): model summary, progress, history (the ``csv`` logger) and checkpoints
  by ``trainer.monitor``/``mode``; a configured callback of the same class
  replaces the default one. Loggers (``tensorboard``, ``mlflow`` or
  components of ``expresso.loggers.Logger`` subclasses) join the callbacks,
  with ``trainer.log_every_n_steps`` and the options a profile or
  ``--offline`` adds (``logger_options``).
- ``init_from: RUN_DIR[:best|last]`` loads another run's weights (only).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..callbacks import LRScheduler
from ..callbacks.defaults import with_defaults
from ..config import Config, ConfigError, Problem, instantiate
from ..config.callables import locate
from ..config.check import INJECTED_BY_NAME, signature_of
from ..config.instantiate import bound_later, instantiate_function
from ..config.loggers import logger_component
from ..engine.data import batch_limit
from ..engine.seeding import seed_everything
from ..engine.trainer import Trainer
from ..runs.folder import RunFolder
from .assemble import assemble
from .blame import building
from .checks import check

SPLITS = ("train", "val", "test")


def build_trainer(
    config: Config,
    run_dir: Path | None,
    *,
    training: bool = True,
    init_weights: bool = True,
    extra_callbacks: tuple = (),
    logger_options: Mapping[int, Mapping[str, Any]] | None = None,
) -> Trainer:
    """A Trainer for ``config``, checked first as ``expresso train`` checks it (unless it was); errors name file and key.

    ``training=False`` builds what evaluation and prediction need (no
    optimizer is required, no callbacks, no ``init_from``); ``init_weights=False``
    skips ``init_from`` (resume loads its own weights); ``extra_callbacks``
    join the configured ones; ``logger_options`` (per ``loggers:`` index: a
    profile's options and ``--offline``'s, config/logger_options.py) are
    added to those loggers' arguments, and stay out of the config tree.
    """
    config = check(config)  # a no-op for a config the command checked already
    tree = config.to_dict()
    _require_sections(config, tree, training)
    seed_everything(tree["trainer"]["seed"])  # the initial weights are part of what a seed reproduces
    logger = logging.getLogger("expresso")
    available = {"task": tree["task"], "run_dir": run_dir, "logger": logger}

    def build_metric(node: dict, path: tuple) -> Any:
        with building(config, *path):
            return _metric(node, available, f"metric {path[-1]!r} ({node['class']})")

    def models_built(models: dict) -> None:  # before the metrics and callbacks that may ask for ``model``
        available["model"] = next(iter(models.values())) if len(models) == 1 else models

    parts = assemble(config, tree, build_metric, _datasets, models_built, optimizers_too=training)
    graph = parts["graph"]
    callbacks = list(extra_callbacks)
    if training:
        callbacks = (
            _callbacks(config, tree, available, parts["schedulers"], len(graph.optimizers), logger_options or {})
            + callbacks
        )
    with building(config, "step"):
        step = _build(tree["step"], available) if tree.get("step") else None
    trainer = Trainer(
        graph=graph,
        pipelines=parts["pipelines"],
        stages=parts["stages"],
        callbacks=callbacks,
        step=step,
        settings=tree["trainer"],
        dataloader=tree["dataloader"],
        run_dir=run_dir,
        config=tree,
    )
    _check_batch_fraction(config, trainer)
    if tree.get("init_from") and training and init_weights:
        trainer.initialised_from = resolve_init_from(tree["init_from"], config)
        trainer.load_checkpoint(trainer.initialised_from, weights_only=True)  # the command logs it, once log.txt exists
    return trainer


def _require_sections(config: Config, tree: dict, training: bool) -> None:
    """Training needs a model, data, an optimizer and a loss (or a ``step`` that computes it), in either form."""
    needed = [("model", "models"), ("dataset", "datasets")]
    if training:
        needed += [("optimizer", "optimizers")] + ([] if tree.get("step") else [("loss", "losses")])
    missing = [single for single, plural in needed if not tree.get(single) and not tree.get(plural)]
    pipelines = tree.get("pipelines") or {}
    if pipelines and all(isinstance(p, dict) and isinstance(p.get("dataset"), dict) for p in pipelines.values()):
        missing = [key for key in missing if key != "dataset"]  # each pipeline brings its own
    if missing:
        where = config.where(())
        raise ConfigError([Problem(where, key, "missing: training needs this section") for key in missing])


def _check_batch_fraction(config: Config, trainer: Trainer) -> None:
    """A fraction of each split's batches needs loaders that know their length: say so now, before any run folder, not at the first epoch."""
    limit = trainer.settings.limit_batches
    for (pipeline, split), loader in trainer.loaders.items():
        try:
            batch_limit(limit, [loader])
        except ValueError:
            data = f"the {split} split" + (f" of pipeline {pipeline!r}" if len(trainer.pipelines) > 1 else "")
            message = f"received {limit!r}, a fraction of each split's batches, but {data} has no length (an iterable dataset); expected a number of batches (an integer)"
            raise ConfigError(
                [Problem(config.where(("trainer", "limit_batches")), "trainer.limit_batches", message)]
            ) from None


def _datasets(node: dict) -> dict[str, Any]:
    sig = signature_of(locate(node["class"]))
    if sig is None or "split" not in sig.parameters or "split" in node:
        return {"train": instantiate(node)}
    return {split: instantiate(node, split=split) for split in SPLITS}


def _build(node: dict, available: Mapping[str, Any]) -> Any:
    """Instantiate a component, injecting the runtime objects its signature asks for."""
    return instantiate(node, **_injected(node, available))


def _injected(node: dict, available: Mapping[str, Any], skip: int = 0) -> dict[str, Any]:
    """The runtime objects (model, task, ...) the callable's signature asks for and the config does not set; ``skip``: its first parameters are the caller's."""
    sig = signature_of(locate(node["class"]))
    if sig is None:
        return {}
    params = list(sig.parameters)[skip:]
    return {name: available[name] for name in INJECTED_BY_NAME if name in params and name not in node}


def _metric(node: dict, available: Mapping[str, Any], name: str) -> Any:
    """A torchmetrics Metric as configured; any other callable wrapped as the batch-size-weighted mean of its values."""
    # torchmetrics (batch_mean imports it too) loads only for a config with metrics: `config --check` stays quick
    from torchmetrics import Metric

    from ..engine.batch_mean import BatchMean

    skip = 2 if bound_later(node, locate(node["class"])) else 0  # a function's first two parameters: prediction, target
    built = instantiate_function(node, **_injected(node, available, skip))
    return built if isinstance(built, Metric) else BatchMean(built, name)


def _callbacks(
    config: Config,
    tree: dict,
    available: Mapping[str, Any],
    schedulers: dict,
    optimizers: int,
    logger_options: Mapping[int, Mapping[str, Any]],
) -> list:
    settings = tree["trainer"]
    configured = []
    for index, node in enumerate(tree["callbacks"]):
        with building(config, "callbacks", index):
            configured.append(_build(node, available))
    for index, entry in enumerate(tree["loggers"]):
        node = logger_component(entry)  # "csv" is the History below; a component is a Logger (checked at --check)
        if node is not None:
            node = {**node, **logger_options.get(index, {})}  # a profile's credentials: never in the tree
            with building(config, "loggers", index):
                logger = _build(node, available)
            logger.log_every_n_steps = settings["log_every_n_steps"]  # the rows metrics.csv gets
            configured.append(logger)
    callbacks = with_defaults(
        configured,
        monitor=settings["monitor"],
        mode=settings["mode"],
        log_every_n_steps=settings["log_every_n_steps"],
        history="csv" in tree["loggers"],
    )
    for name, (_path, entries) in schedulers.items():
        by_interval: dict[str, list] = {}
        for entry in entries:
            node = {k: v for k, v in entry.items() if k != "interval"}
            by_interval.setdefault(entry.get("interval", "epoch"), []).append(
                lambda optimizer, node=node: instantiate(node, optimizer)
            )
        for interval, builders in by_interval.items():
            # one optimizer: no name, so the plain config's checkpoints keep the key "LRScheduler"
            callbacks.append(
                LRScheduler(
                    builders, interval=interval, optimizer=name if optimizers > 1 else None, monitor=settings["monitor"]
                )
            )
    return callbacks


def resolve_init_from(value: str, config: Config) -> Path:
    """``RUN_DIR``, ``RUN_DIR:best``, ``RUN_DIR:last`` or a checkpoint file -> the checkpoint path."""
    target, _, which = value.rpartition(":") if value.rsplit(":", 1)[-1] in ("best", "last") else (value, "", "")
    path = Path(target)
    if path.is_dir():
        path = RunFolder(path).checkpoints.named(which or "best")
    if not path.is_file():
        raise ConfigError(
            [
                Problem(
                    config.where(("init_from",)),
                    "init_from",
                    f"no checkpoint at {str(path)!r} (expected RUN_DIR[:best|last] or a .ckpt file)",
                )
            ]
        )
    return path
