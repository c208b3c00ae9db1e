"""The training loop: one screen, read top to bottom.

::

    fit():
        seed (or restore a checkpoint: weights, optimizers, callbacks, RNG, position)
        FIT_START
        [validate()  if trainer.validate_before_fit]
        for each stage (from the resumed one):        # a plain run: one stage, one pipeline
            freeze its frozen models; STAGE_START
            while stage epochs left and not stopped:
                EPOCH_START
                for (pipeline, batch) in its pipelines' loaders, interleaved (from the resumed position):
                    BATCH_START
                    for each update of the pipeline (usually one):
                        forward the nodes it needs; its losses   # or the config's step
                        AFTER_FORWARD
                        loss.backward()
                        AFTER_BACKWARD
                        BEFORE_OPTIMIZER_STEP
                        clip, step its optimizers; zero_grad(set_to_none=True)
                    metrics.update(outputs)           # on device, no host sync
                    BATCH_END                         # LR step; step checkpoints written after every handler
                train metrics computed                # the epoch's one host sync
                every val_every_n_epochs:
                    VALIDATION_START
                    for each val pipeline, batch: outputs = forward + losses  (inference_mode)
                                                  EVAL_BATCH_END
                    VALIDATION_END
                the stage's own stop condition (early_stopping, until)
                EPOCH_END                             # early stopping, progress line, history row (last)
                checkpoints asked for during BATCH_END/EPOCH_END, written now: they hold every handler's work
            STAGE_END; unfreeze
        FIT_END
        (an exception: EXCEPTION, then it propagates)

    test() / validate() / predict():  EVAL_START, EVAL_BATCH_END per batch, EVAL_END

Control flow: ``SkipBatch`` (drop the batch), ``StopEpoch`` (end the epoch now), ``StopTraining``
(end the epoch now, then the fit), ``Rollback`` (reload the last finite checkpoint: NaNGuard), or
``state.request_stop(by, why)`` (end the stage, in a plain run the fit, after this epoch). Callbacks
write checkpoints through ``state.save_checkpoint(path)`` and call ``state.wait_for_checkpoints()``
before reading one (a no-op while writes are synchronous). A checkpoint asked for during BATCH_END or
EPOCH_END is written once every handler of that event has run, so whatever order a callback has, its
work (a metric in the history row, its own state) is in the checkpoint of that step or epoch (a handler
that raises cancels them: the previous checkpoint stays the resume point).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..config.schema import DataLoaderConfig, TrainerConfig
from .callback import Callback, Dispatcher
from .data import batch_limit, make_loader
from .devices import move, resolve_device
from .evaluation import Evaluation
from .events import Event, Rollback, SkipBatch, StopEpoch, StopTraining
from .graph import Graph, GraphError
from .interleave import epoch_batches
from .metrics import MetricSet, metric_prefix
from .pipeline import Pipeline, Plan
from .seeding import seed_everything
from .snapshot import read, write
from .stages import Stage, nothing_left
from .state import State

Step = Callable[[Graph, dict], dict]
SPLITS = ("train", "val", "test")


def _settings(cls: type, given: Any) -> dict:
    defaults = dataclasses.asdict(cls())
    if given is None:
        return defaults
    if dataclasses.is_dataclass(given):
        given = dataclasses.asdict(given)
    unknown = set(given) - set(defaults)
    if unknown:
        raise TypeError(f"unknown {cls.__name__} setting(s): {sorted(unknown)}")
    return {**defaults, **given}


class Trainer(Evaluation):
    """Trains a graph of models; the Python API takes the objects a config builds.

    Either ``model`` (+ ``loss``, ``optimizer``) for the one-node case, or a
    ``graph``. ``optimizer`` may be built (an Optimizer) or a callable that
    takes the model's parameters (``instantiate(config["optimizer"], _partial_...)``
    or ``functools.partial(torch.optim.AdamW, lr=1e-3)``). Data may be
    datasets (expresso builds resumable loaders from ``dataloader`` settings)
    or ready DataLoaders: ``train_data``/``val_data``/``test_data`` and
    ``metrics`` make the one pipeline of a plain run, ``pipelines`` several;
    ``stages`` (default: one over every pipeline) train them in steps.
    """

    def __init__(
        self,
        *,
        model: nn.Module | None = None,
        loss: Callable | None = None,
        optimizer: torch.optim.Optimizer | Callable | None = None,
        graph: Graph | None = None,
        train_data: Dataset | DataLoader | None = None,
        val_data: Dataset | DataLoader | None = None,
        test_data: Dataset | DataLoader | None = None,
        metrics: Mapping[str, Any] | None = None,
        pipelines: Sequence[Pipeline] | None = None,
        stages: Sequence[Stage] | None = None,
        callbacks: Iterable[Callback] = (),
        step: Step | None = None,
        settings: TrainerConfig | Mapping | None = None,
        dataloader: DataLoaderConfig | Mapping | None = None,
        run_dir: str | Path | None = None,
        config: dict | None = None,
    ):
        self.settings = _settings(TrainerConfig, settings)
        self.loader_settings = _settings(DataLoaderConfig, dataloader)
        self.device = resolve_device(self.settings["device"])
        if graph is None:
            if model is None:
                raise TypeError("Trainer needs a model (with loss and optimizer) or a graph")
            model.to(self.device)
            if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
                optimizer = optimizer(model.parameters())
            graph = Graph.single(model, loss, optimizer)
        else:
            for m in graph.models.values():
                m.to(self.device)
        self.graph = graph
        if self.settings["compile"]:
            graph.compile(mode=None if self.settings["compile"] is True else self.settings["compile"])
        self.step_fn: Step | None = step
        pin = self.loader_settings["pin_memory"]
        self.pin_memory = self.device.type == "cuda" if pin == "auto" else bool(pin)
        self.non_blocking = self.device.type == "cuda" and self.pin_memory
        if pipelines is None:
            pipelines = [Pipeline("main", train_data, val_data, test_data, metrics=metrics)]
        elif any(x is not None for x in (train_data, val_data, test_data, metrics)):
            raise TypeError(
                "give data and metrics either to the Trainer (one pipeline) or to each of `pipelines`, not both"
            )
        self.pipelines = {p.name: p for p in pipelines}
        self.plans = {
            p.name: Plan(p, graph, graph.batch if graph.batch is not None else p.batch_names()) for p in pipelines
        }
        self.stages = list(stages) if stages else [Stage()]
        for index, stage in enumerate(self.stages):
            stage.resolve(self.pipelines, graph, index)
        self._restored = False  # load_checkpoint restored a whole run: fit continues it instead of seeding
        self._deferring = False  # BATCH_END/EPOCH_END handlers are running: checkpoints wait in _deferred
        self._deferred: list[tuple] = []
        self.initialised_from: Path | None = None  # init_from: the checkpoint the weights came from
        self.loaders: dict[tuple[str, str], DataLoader] = {}
        self.metric_sets: dict[tuple[str, str], MetricSet] = {}
        for index, p in enumerate(pipelines):
            for split in SPLITS:
                loader = self._loader(p.data(split), train=split == "train", seed_offset=index)
                if loader is not None:
                    self.loaders[p.name, split] = loader
                prefix = metric_prefix(split, p.name, len(pipelines))
                given = p.metrics if split == "train" and index == 0 else _copies(p.metrics)
                self.metric_sets[p.name, split] = MetricSet(
                    given, prefix, self.device, self.plans[p.name].metric_inputs
                )
        self.callbacks = Dispatcher(callbacks)
        self.state = State(
            graph=graph,
            max_epochs=self.settings["max_epochs"],
            max_steps=self.settings["max_steps"],
            run_dir=Path(run_dir) if run_dir is not None else None,
            config=config,
            save_checkpoint=self.save_checkpoint,
            wait_for_checkpoints=lambda: None,  # writes are synchronous for now (see save_checkpoint)
            stages=[stage.name for stage in self.stages],
            metric_names=set().union(*(m.names(self._terms(name)) for (name, _), m in self.metric_sets.items())),
        )
        self.enter_stage(self.stages[0])

    def _terms(self, pipeline: str) -> list[str]:
        plan = self.plans[pipeline]
        return [term.name for term in plan.terms] if plan.log_terms else []

    # -- data -------------------------------------------------------------
    def _loader(self, data: Any, train: bool, seed_offset: int = 0) -> DataLoader | None:
        if data is None or isinstance(data, DataLoader):
            return data
        batch = (
            self.settings["batch_size"]
            if train
            else (self.loader_settings["eval_batch_size"] or self.settings["batch_size"])
        )
        seed = self.settings["seed"] + 100_003 * seed_offset  # pipelines over one dataset shuffle differently
        return make_loader(
            data, batch_size=batch, train=train, settings=self.loader_settings, seed=seed, pin_memory=self.pin_memory
        )

    def loader(self, split: str, pipeline: str | None = None) -> DataLoader | None:
        """The loader of ``split`` for ``pipeline`` (default: the first pipeline that has one)."""
        if pipeline is not None:
            return self.loaders.get((pipeline, split))
        return next((self.loaders[name, split] for name in self.pipelines if (name, split) in self.loaders), None)

    def _tensors(self, plan: Plan, batch: Any) -> dict[str, Any]:
        tensors = plan.pipeline.tensors(batch)
        if self.device.type != "cpu":
            tensors = move(tensors, self.device, self.non_blocking)
        return tensors

    def fire(self, event: Event) -> None:
        self.callbacks(event, self.state)

    def _fire_then_save(self, event: Event) -> None:
        """Fire ``event``; the checkpoints its handlers ask for are written after the last one.

        When a handler raises, they are not written: the handlers after it did
        not run (the history row, their states), so the previous checkpoint
        stays the consistent resume point.
        """
        self._deferring = True
        try:
            self.callbacks(event, self.state)
        except BaseException:
            self._deferred.clear()
            raise
        finally:
            self._deferring = False
        if self._deferred:
            pending, self._deferred = self._deferred, []
            for path, then, keep_previous in pending:
                self._write_checkpoint(path, then, keep_previous)

    # -- fit --------------------------------------------------------------
    def fit(self, resume_from: str | Path | None = None) -> dict[str, float]:
        """Train every stage until its end, max_steps or a stop; returns the last metrics."""
        state = self.state
        state.phase = "fit"
        if not any(split == "train" for _, split in self.loaders):
            raise ValueError("fit() needs train_data")
        for index, stage in enumerate(self.stages):
            untrainable = [name for name in stage.train if not self.plans[name].terms and self.step_fn is None]
            if untrainable:
                raise GraphError(
                    f"stage {stage.name!r} trains pipeline(s) {untrainable}, which have no loss term to train with",
                    ("stages", index),
                )
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        elif not self._restored:
            seed_everything(self.settings["seed"])
        try:
            self.fire(Event.FIT_START)
            if (
                self.settings["validate_before_fit"]
                and state.step == 0
                and state.batch_index == 0
                and state.stage_epoch == 0
                and state.stage == 0
            ):
                self._validate(self.stages[0])
            while state.stage < len(self.stages) and not state.stop_fit and not self._steps_done():
                try:
                    self._run_stage(self.stages[state.stage])
                except Rollback as back:
                    self._roll_back(back)
            self.fire(Event.FIT_END)
            self._restored = False  # a second fit() starts afresh
        except BaseException as exc:
            state.extra["exception"] = exc
            self.fire(Event.EXCEPTION)
            raise
        return dict(state.metrics)

    def _roll_back(self, back: Rollback) -> None:
        """Restore the checkpoint (weights, optimizers, callbacks, RNG, position), then scale every learning rate."""
        self._zero_grad()
        self.load_checkpoint(back.path)
        for spec in self.graph.optimizers.values():
            for group in spec.optimizer.param_groups:
                group["lr"] *= back.lr_factor

    def _steps_done(self) -> bool:
        return self.state.max_steps is not None and self.state.step >= self.state.max_steps

    def _stage_epochs(self, stage: Stage) -> int:
        epochs = stage.epochs or self.settings["max_epochs"]
        return min(epochs, self.settings["limit_epochs"] or epochs)

    def nothing_left(self) -> tuple[str, str] | None:
        """Why ``fit()`` from here would train nothing: (``steps``, ``stopped`` or ``epochs``, why); None: it would train."""
        if self._steps_done():
            return "steps", f"it has made its max_steps={self.state.max_steps} optimizer steps"
        return nothing_left(self.state, [self._stage_epochs(stage) for stage in self.stages], self.settings)

    def enter_stage(self, stage: Stage) -> None:
        """Point the state at ``stage``: its name, its epoch budget, the optimizers each update steps."""
        state = self.state
        state.stage_name = stage.name
        state.stage_epochs = self._stage_epochs(stage)
        frozen = set(stage.frozen)
        self._steps = {
            name: [
                (update, nodes, terms, [self.graph.optimizers[o] for o in plan.optimizers_of(update, frozen)])
                for update, nodes, terms in plan.steps
            ]
            for name, plan in self.plans.items()
        }

    def _run_stage(self, stage: Stage) -> None:
        state = self.state
        self.enter_stage(stage)
        stage.freeze(self.graph)
        try:
            self.fire(Event.STAGE_START)
            while (
                state.stage_epoch < state.stage_epochs
                and not state.should_stop
                and not state.stop_fit
                and not self._steps_done()
            ):
                self._train_epoch(stage)
        finally:
            stage.unfreeze(self.graph)
        if state.stop_fit or (self._steps_done() and state.stage_epoch < state.stage_epochs and not state.should_stop):
            return  # the fit ends inside this stage
        self.fire(Event.STAGE_END)
        state.stage += 1
        state.stage_epoch = 0
        state.should_stop = False
        state.stops = {}

    def _train_epoch(self, stage: Stage) -> None:
        state = self.state
        limit = batch_limit(
            self.settings["limit_batches"], [self.loaders[name, "train"] for name in stage.train], "the training data"
        )
        sets = [self.metric_sets[name, "train"] for name in stage.train]
        if state.batch_index == 0:
            for metrics in sets:
                metrics.reset()
            state.metrics.clear()  # an epoch reports what it measured, never a stale value
        batches = epoch_batches(
            {name: self.loaders[name, "train"] for name in stage.train}, self.plans, stage, state, limit
        )
        state.epoch_finished = False
        self.graph.train(True)
        if stage.early_stopping is not None:
            stage.early_stopping.on_epoch_start(state)
        self.fire(Event.EPOCH_START)
        try:
            for plan, batch in batches:
                if limit is not None and state.batch_index >= limit:
                    break
                try:
                    self._train_batch(plan, batch)
                except SkipBatch:
                    self._zero_grad()
                    state.batch_index += 1
                    continue
                state.batch_index += 1
                self._fire_then_save(Event.BATCH_END)
                if self._steps_done():
                    break
        except StopEpoch:
            self._zero_grad()  # a batch cancelled after backward must not leak into the next step
        except StopTraining:
            self._zero_grad()
            state.should_stop = state.stop_fit = True
        for metrics in sets:
            state.metrics.update(metrics.compute())
        if (
            (state.stage_epoch + 1) % self.settings["val_every_n_epochs"] == 0
            or state.should_stop
            or self._steps_done()
        ):
            self._validate(stage)
        state.epoch_finished = True
        if stage.early_stopping is not None:
            stage.early_stopping.on_epoch_end(state)
        if stage.until is not None and stage.until(state):
            state.request_stop(f"stages.{state.stage}.until", "its until condition held")
        self._fire_then_save(Event.EPOCH_END)
        state.epoch += 1
        state.stage_epoch += 1
        state.batch_index = 0
        state.epoch_finished = False

    def _train_batch(self, plan: Plan, batch: Any) -> None:
        state = self.state
        state.batch, state.pipeline = batch, plan.pipeline.name
        self.fire(Event.BATCH_START)
        tensors = self._tensors(plan, batch)
        state.outputs = tensors
        steps = self._steps[plan.pipeline.name]
        if self.step_fn is not None:  # the config's own step: one update over everything it computed
            tensors = state.outputs = self.step_fn(self.graph, tensors)
            self._update(tensors["loss"], steps[0][3])
        elif len(steps) == 1:
            _, nodes, terms, optimizers = steps[0]
            self.graph.forward(tensors, nodes)
            self._update(self.graph.loss(tensors, terms, plan.log_terms), optimizers)
        else:
            total = 0.0
            for _, nodes, terms, optimizers in steps:
                self.graph.forward(tensors, nodes)
                loss = self.graph.loss(tensors, terms, plan.log_terms)
                self._update(loss, optimizers)
                total = total + loss.detach()
            tensors["loss"] = total
        if plan.rest:
            with torch.no_grad():
                self.graph.forward(tensors, plan.rest)
        state.step += 1
        self.metric_sets[plan.pipeline.name, "train"].update(tensors)

    def _update(self, loss: torch.Tensor, optimizers: list) -> None:
        """Backward one loss, then clip and step its optimizers."""
        self.fire(Event.AFTER_FORWARD)
        loss.backward()
        self.fire(Event.AFTER_BACKWARD)
        self.fire(Event.BEFORE_OPTIMIZER_STEP)
        for spec in optimizers:
            spec.clip()
            spec.optimizer.step()
        self._zero_grad()

    def _zero_grad(self) -> None:
        for spec in self.graph.optimizers.values():
            spec.optimizer.zero_grad(set_to_none=True)

    # -- checkpoints -------------------------------------------------------
    def save_checkpoint(
        self, path: str | Path, then: Callable[[], None] | None = None, keep_previous: bool = False
    ) -> None:
        """Everything a resumed run needs to continue bit for bit, written atomically and recorded in the folder's manifest.

        ``then`` runs once the file is on disk (e.g. linking it as best.ckpt);
        ``keep_previous`` keeps the file it replaces as ``previous.ckpt``, the
        fallback when the newest is found damaged (manifest.py).
        Written on the training thread (engine/checkpoints/io.py says why no writer thread).
        """
        if self._deferring:
            self._deferred.append((path, then, keep_previous))
            return
        self._write_checkpoint(path, then, keep_previous)

    def _write_checkpoint(self, path: str | Path, then: Callable[[], None] | None, keep_previous: bool) -> None:
        self.fire(Event.CHECKPOINT_SAVE)
        write(self, Path(path), keep_previous)
        if then is not None:
            then()

    def load_checkpoint(self, path: str | Path, weights_only: bool = False) -> dict[str, Any]:
        """Restore a checkpoint; ``weights_only`` restores the models alone (``init_from``)."""
        payload = read(self, path, weights_only)
        if not weights_only:
            self._restored = True
            self.fire(Event.CHECKPOINT_LOAD)
        return payload


def _copies(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Independent metric objects per split (a metric keeps state)."""
    if not metrics:
        return metrics
    return {name: copy.deepcopy(metric) for name, metric in metrics.items()}
