"""The training loop: one screen, read top to bottom.

::

    fit():                                            # Trainer.fit
        seed (or restore a checkpoint: weights, optimizers, callbacks, RNG, position)
        FIT_START
        [validate()  if trainer.validate_before_fit]
        for each stage (from the resumed one) until state.stop ends the fit:   # a plain run: one stage
            freeze its frozen models; STAGE_START       # Trainer._run_stage; its stop conditions hear events from here
            while stage epochs left and not state.stop:
                EPOCH_START                           # Trainer._train_epoch
                for (pipeline, batch) in its pipelines' loaders, interleaved (from the resumed position):
                    BATCH_START                       # Trainer._train_batch
                    for each update of the pipeline (usually one):
                        forward the nodes it needs; its losses   # or the config's step; under autocast (stepping.py)
                        AFTER_FORWARD
                        (loss / accumulate_grad_batches).backward()   # scaled by the GradScaler under 16-mixed
                        AFTER_BACKWARD
                        if the batch closes its window (every accumulate_grad_batches-th, the epoch's last):
                            BEFORE_OPTIMIZER_STEP
                            clip, step its optimizers; zero_grad(set_to_none=True)
                    metrics.update(outputs)           # on device, no host sync
                    if it closed its window (always, without accumulation):
                        state.step += 1               # the max_steps-th: state.stop |= STEPS, the epoch ends after it
                        BATCH_END                     # the step's work (a per-step schedule)
                        BATCH_CHECKPOINT              # record, save: step checkpoints written after its last handler
                train metrics computed                # the epoch's one host sync
                a training loss not finite: NonFiniteLossError, nothing of the epoch saved (finite.py)
                every val_every_n_epochs, and in an epoch that stops:
                    VALIDATION_START
                    for each val pipeline, batch: outputs = forward + losses  (inference_mode)
                                                  EVAL_BATCH_END
                    VALIDATION_END
                EPOCH_END                             # the epoch's work: stop conditions, schedules, progress line
                EPOCH_CHECKPOINT                      # record, save: history row, loggers, checkpoints written after
                                                      # its last handler, so they hold every handler's work
            unfreeze; STAGE_END                       # not when the fit ends inside the stage (max_steps, StopTraining)
        FIT_END
        (an exception: EXCEPTION, then it propagates)

    test() / validate() / predict():  EVAL_START, EVAL_BATCH_END per batch, EVAL_END

Control flow: ``SkipBatch`` (drop the batch), ``StopEpoch`` (end the epoch now), ``StopTraining``
(end the epoch now, then the fit), ``Rollback`` (reload a checkpoint and train on: NaNGuard), or
``state.request_stop(by, why)`` (end the stage, in a plain run the fit, after this epoch). The loop
reads one signal, ``state.stop`` (state.py's ``Stop``). Callbacks write checkpoints through
``state.save_checkpoint(path)`` and call ``state.wait_for_checkpoints()`` before reading one (a write
runs on the writer thread); when each is written is saving.py's. The stage's stop conditions
(stages.py) and the run's callbacks are callbacks alike: the loop calls none by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..heap import steady_heap
from ..names import PREDICTION
from ..runs.atomic import wait_for_syncs
from ..settings import DataLoaderConfig, TrainerConfig, from_mapping
from . import distributed
from .callback import Callback, Dispatcher
from .data import batch_limit
from .devices import resolve_device
from .evaluation import Evaluation, Step
from .events import Event, Rollback, SkipBatch, StopEpoch, StopTraining
from .finite import FiniteCheck, step_overflow
from .graph import Graph, GraphError
from .interleave import epoch_batches
from .loaders import Loaders
from .parts import metric_names_of, metric_sets_of, pipelines_of, placed_graph
from .pipeline import Pipeline, Plan, UpdateStep
from .saving import Saving
from .seeding import seed_everything
from .snapshot import prepare, read
from .stages import Stage, nothing_left
from .state import State, Stop
from .stepping import Stepper


class Trainer:
    """Trains a graph of models; the Python API takes the objects a config builds.

    Either ``model`` (+ ``loss``, ``optimizer``) for the one-node case, or a
    ``graph``. ``optimizer`` may be built (an Optimizer) or a callable that
    takes the model's parameters (``instantiate(config["optimizer"], _partial_...)``
    or ``functools.partial(torch.optim.AdamW, lr=1e-3)``). Data may be
    datasets (expresso builds resumable loaders: loaders.py) or ready
    DataLoaders: ``train_data``/``val_data``/``test_data`` and ``metrics``
    make the one pipeline of a plain run, ``pipelines`` several; ``stages``
    (default: one over every pipeline) train them in steps. ``settings`` and
    ``dataloader`` are the config's sections, as ``expresso.settings``
    objects or mappings of their keys.
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
        self.settings: TrainerConfig = from_mapping(TrainerConfig, settings)
        self.loader_settings: DataLoaderConfig = from_mapping(DataLoaderConfig, dataloader)
        self.device = resolve_device(distributed.local_device(self.settings.device, distributed.launched()))
        distributed.setup(self.device)  # under torchrun: join the process group before the loaders shard the data
        self.graph = graph = placed_graph(self.device, graph, model, loss, optimizer)
        self.step_fn: Step | None = step
        pipelines = pipelines_of(pipelines, train_data, val_data, test_data, metrics)
        self.pipelines = {p.name: p for p in pipelines}
        self.plans = {
            p.name: Plan(p, graph, graph.batch if graph.batch is not None else p.batch_names()) for p in pipelines
        }
        self.stepper = Stepper.of(graph, self.device, self.settings, self.plans)  # channels_last before compiling
        if self.settings.compile:
            graph.compile(mode=None if self.settings.compile is True else self.settings.compile)
        self.stages = list(stages) if stages else [Stage()]
        for index, stage in enumerate(self.stages):
            stage.resolve(self.pipelines, graph, index)
        self.loaders = Loaders(pipelines, self.settings, self.loader_settings, self.device)
        self.metric_sets = metric_sets_of(pipelines, self.plans, self.device)
        # several processes: the callbacks that write (rank_zero_only) run on rank 0 alone
        self.callbacks = Dispatcher(cb for cb in callbacks if distributed.is_zero() or not cb.rank_zero_only)
        self._conditions: Dispatcher | None = None  # the running stage's stop conditions: they hear its events
        self._restored = False  # load_checkpoint restored a whole run: fit continues it instead of seeding
        self.initialised_from: Path | None = None  # init_from: the checkpoint the weights came from
        self.state = State(
            graph=graph,
            max_epochs=self.settings.max_epochs,
            max_steps=self.settings.max_steps,
            run_dir=Path(run_dir) if run_dir is not None else None,
            config=config,
            save_checkpoint=self.save_checkpoint,
            wait_for_checkpoints=lambda: self.saving.wait(),  # self.saving is built below, from the state
            stages=[stage.name for stage in self.stages],
            metric_names=metric_names_of(self.metric_sets, self.plans),
        )
        self.finite = FiniteCheck(self.state, self.settings.stop_on_non_finite)
        self.saving = Saving(
            self.finite.guarding(lambda path, keep_previous: prepare(self, path, keep_previous)), self.fire
        )
        self.evaluation = Evaluation(
            graph=graph,
            plans=self.plans,
            loaders=self.loaders,
            metric_sets=self.metric_sets,
            state=self.state,
            fire=self.fire,
            step=step,
            limit_batches=self.settings.limit_batches,
            autocast=self.stepper.autocast,
        )
        self.enter_stage(self.stages[0])
        distributed.wrap(graph, self.device, find_unused=len(self.stages) > 1 or len(graph.nodes) > 1)

    def fire(self, event: Event) -> None:
        """Fire ``event``: the running stage's stop conditions first, then the run's callbacks."""
        if self._conditions is not None:
            self._conditions(event, self.state)
        self.callbacks(event, self.state)

    # -- fit --------------------------------------------------------------
    def fit(self, resume_from: str | Path | None = None) -> dict[str, float]:
        """Train every stage until its end, max_steps or a stop; returns the last metrics."""
        state = self.state
        steady_heap()  # the same heap however the process got here (heap.py: what the steps' memory costs)
        self._begin_fit(resume_from)
        try:
            self.fire(Event.FIT_START)
            if self.settings.validate_before_fit and not (
                state.step or state.batch_index or state.stage or state.stage_epoch
            ):
                self.evaluation.validate_stage(self.stages[0])  # only before the first step, not on resume
            while state.stage < len(self.stages) and not state.stop & Stop.ENDS_FIT:
                try:
                    self._run_stage(self.stages[state.stage])
                except Rollback as back:
                    self._roll_back(back)
            self.saving.wait()  # FIT_END's handlers (and whoever reads the run after) find every checkpoint on disk
            self.fire(Event.FIT_END)
            wait_for_syncs()  # fit() returns with its checkpoints durable (their fsyncs run in the background)
            self._restored = False  # a second fit() starts afresh
        except BaseException as exc:
            self.saving.finish(exc)  # the checkpoints in flight reach the disk before anyone records the failure
            self.finite.annotate(exc)
            state.extra["exception"] = exc
            self.fire(Event.EXCEPTION)
            raise
        return dict(state.metrics)

    def _begin_fit(self, resume_from: str | Path | None) -> None:
        """Refuse a fit that cannot train; restore ``resume_from`` (or go on from a restored run), else seed."""
        self.state.phase = "fit"
        self.state.images, self.state.texts = [], []  # what the loggers get is this fit's
        if not self.loaders.has("train"):
            raise ValueError("fit() needs train_data")
        for index, stage in enumerate(self.stages):
            untrainable = [name for name in stage.trained if not self.plans[name].terms and self.step_fn is None]
            if untrainable:
                raise GraphError(
                    f"stage {stage.name!r} trains pipeline(s) {untrainable}, which have no loss term to train with",
                    ("stages", index),
                )
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        elif not self._restored:
            seed_everything(self.settings.seed)

    def _roll_back(self, back: Rollback) -> None:
        """Restore the checkpoint ``back`` names (weights, optimizers, callbacks, RNG, position); training goes on from it."""
        self._zero_grad()
        self.load_checkpoint(back.path)

    def _stage_epochs(self, stage: Stage) -> int:
        epochs = stage.epochs or self.settings.max_epochs
        return min(epochs, self.settings.limit_epochs or epochs)

    def nothing_left(self) -> tuple[str, str] | None:
        """Why ``fit()`` from here would train nothing: (``steps``, ``stopped`` or ``epochs``, why); None: it would train."""
        budgets = [self._stage_epochs(stage) for stage in self.stages]
        return nothing_left(self.state, budgets, self.settings.max_epochs, self.settings.limit_epochs)

    def enter_stage(self, stage: Stage) -> None:
        """Point the state at ``stage``: its name, its epoch budget, the optimizers each update steps."""
        self.state.stage_name = stage.name
        self.state.stage_epochs = self._stage_epochs(stage)
        frozen = set(stage.frozen)
        self._updates: dict[str, list[UpdateStep]] = {name: plan.for_stage(frozen) for name, plan in self.plans.items()}

    def _run_stage(self, stage: Stage) -> None:
        """The stage loop: epochs until the stage's budget is spent or ``state.stop`` says so."""
        state = self.state
        self.enter_stage(stage)
        stage.freeze(self.graph)
        self._conditions = stage.conditions if stage.conditions.callbacks else None
        try:
            self.fire(Event.STAGE_START)
            while state.stage_epoch < state.stage_epochs and not state.stop:
                self._train_epoch(stage)
        finally:
            self._conditions = None
            stage.unfreeze(self.graph)
        if state.stop & Stop.FIT or (state.stop & Stop.STEPS and not state.stage_over()):
            return  # the fit ends inside this stage
        self.fire(Event.STAGE_END)
        state.stage_done()

    def _train_epoch(self, stage: Stage) -> None:
        """The epoch loop: the stage's batches from the resumed position, then validation and the epoch's end."""
        state = self.state
        loaders = {name: self.loaders[name, "train"] for name in stage.trained}
        limit = batch_limit(self.settings.limit_batches, loaders.values(), "the training data")
        sets = [self.metric_sets[name, "train"] for name in stage.trained]
        if state.batch_index == 0:
            for metrics in sets:
                metrics.reset()
            state.metrics.clear()  # an epoch reports what it measured, never a stale value
        batches = epoch_batches(loaders, self.plans, stage, state, limit)
        state.epoch_finished = False
        self.graph.train(True)
        self.fire(Event.EPOCH_START)
        try:
            for plan, batch in batches:
                if limit is not None and state.batch_index >= limit:
                    break
                self._train_batch(plan, batch)
                if state.stop & Stop.ENDS_FIT:
                    break
            if self.stepper.pending:  # a loader without a length ended inside a window: its last batches step
                self._step()
                state.count_step()
                self.saving.fire_then_write(Event.BATCH_END, Event.BATCH_CHECKPOINT)
        except StopEpoch:
            self._zero_grad()  # a batch cancelled after backward must not leak into the next step
        except StopTraining:
            self._zero_grad()
            state.stop |= Stop.FIT
        for metrics in sets:
            state.metrics.update(metrics.compute())
        self.finite.check_epoch(metrics.prefix for metrics in sets)  # before anything of the epoch is saved
        if (state.stage_epoch + 1) % self.settings.val_every_n_epochs == 0 or state.stop:
            self.evaluation.validate_stage(stage)
        state.epoch_finished = True
        self.saving.fire_then_write(Event.EPOCH_END, Event.EPOCH_CHECKPOINT)
        state.epoch_done()

    def _train_batch(self, plan: Plan, batch: Any) -> None:
        """The batch: its updates, its metrics; when it closes its window, one optimizer step counted and the step's end.

        SkipBatch drops the batch and the gradients its window summed so far.
        """
        state = self.state
        state.batch, state.pipeline = batch, plan.pipeline.name
        closes = self.stepper.closes(state.batch_index, state.epoch_length)
        try:
            self.fire(Event.BATCH_START)
            tensors = state.outputs = self.loaders.tensors(plan, batch)
            tensors = self._update_all(plan, tensors, closes)
            if plan.rest:  # the nodes only the metrics read
                with torch.no_grad(), self.stepper.autocast():
                    self.graph.forward(tensors, plan.rest)
            if closes:
                state.count_step()
            self.metric_sets[plan.pipeline.name, "train"].update(tensors)
        except SkipBatch:
            self._zero_grad()
            state.batch_index += 1
            return
        state.batch_index += 1
        if closes:
            self.saving.fire_then_write(Event.BATCH_END, Event.BATCH_CHECKPOINT)

    def _update_all(self, plan: Plan, tensors: dict[str, Any], closes: bool) -> dict[str, Any]:
        """The batch's updates in order (usually one); returns its tensors, ``loss`` the sum it trained on.

        ``closes``: the batch ends its window, so each update steps its
        optimizers (several updates per batch need a window of one batch).
        """
        updates = self._updates[plan.pipeline.name]
        autocast = self.stepper.autocast
        if self.step_fn is not None:  # the config's own step: one update over everything it computed
            with autocast():
                tensors = self.state.outputs = self.step_fn(self.graph, tensors)
            self._update(tensors["loss"], updates[0].optimizers, closes)
            return tensors
        if len(updates) == 1:
            (update,) = updates
            with autocast():
                self.graph.forward(tensors, update.nodes)
                loss = self.graph.loss(tensors, update.terms, plan.log_terms)
            self._update(loss, update.optimizers, closes)
            return tensors
        total: torch.Tensor | float = 0.0
        for update in updates:
            with autocast():
                self.graph.forward(tensors, update.nodes)
                loss = self.graph.loss(tensors, update.terms, plan.log_terms)
            self._update(loss, update.optimizers, closes)
            total = total + loss.detach()
        tensors["loss"] = total
        return tensors

    def _update(self, loss: torch.Tensor, optimizers: Iterable, closes: bool) -> None:
        """Backward one loss; when the batch closes its window, clip and step the window's optimizers."""
        self.fire(Event.AFTER_FORWARD)
        self.stepper.backward(loss, optimizers)
        self.fire(Event.AFTER_BACKWARD)
        if closes:
            self._step()

    def _step(self) -> None:
        self.fire(Event.BEFORE_OPTIMIZER_STEP)
        self.stepper.step(lambda exc, optimizer: step_overflow(exc, optimizer, self.state))

    def _zero_grad(self) -> None:
        self.stepper.discard()

    # -- checkpoints -------------------------------------------------------
    def save_checkpoint(
        self, path: str | Path, then: Callable[[], None] | None = None, keep_previous: bool = False, wait: bool = False
    ) -> None:
        """Everything a resumed run needs to continue bit for bit, written atomically and recorded in the folder's manifest.

        ``then`` runs once the file is on disk (e.g. linking it as best.ckpt);
        ``keep_previous`` keeps the file it replaces as ``previous.ckpt``, the
        fallback when the newest is found damaged (manifest.py). Asked for at
        a step's or an epoch's end, it is written after that end's last
        handler, on the writer thread (``wait``: the end waits for it, and
        ``then``'s exception is raised there); otherwise at once (saving.py).
        """
        if not distributed.is_zero():  # rank 0 writes the run folder; the others go on as if it were written
            if then is not None:
                then()
            return
        self.saving.save(path, then, keep_previous, wait)

    def load_checkpoint(self, path: str | Path, weights_only: bool = False) -> dict[str, Any]:
        """Restore a checkpoint; ``weights_only`` restores the models alone (``init_from``)."""
        self.saving.wait()  # a rollback reads what the writer thread may still be writing
        payload = read(self, path, weights_only)
        if not weights_only:
            self._restored = True
            self.state.restored_from = Path(path)
            self.finite.restored(path)
            self.fire(Event.CHECKPOINT_LOAD)
        return payload

    # -- passes that update nothing (evaluation.py) --------------------------
    def validate(self) -> dict[str, float]:
        """One pass over the validation data of every pipeline that has some; returns ``val/...`` metrics."""
        return self.evaluation.run("validate", "val")

    def test(self) -> dict[str, float]:
        """One pass over the test data of every pipeline that has some; returns ``test/...`` metrics."""
        return self.evaluation.run("test", "test")

    def evaluate_train(self) -> dict[str, float]:
        """One pass over the training data of every pipeline, as ``test()`` passes over the test data; returns ``train/...`` metrics.

        The models are in evaluation mode (no dropout) and nothing is updated.
        The data is read in order, whole (no shuffling, no dropped last
        batch) and in ``eval_batch_size`` batches: the training loader's
        order and batches are for fitting.
        """
        return self.evaluation.run("evaluate_train", "train")

    def predict(
        self, data: Dataset | DataLoader, output: str = PREDICTION, pipeline: str | None = None
    ) -> torch.Tensor:
        """The named output of the graph for every sample (read as ``pipeline``'s batches), concatenated on the CPU."""
        return self.evaluation.predict(data, output, pipeline)

    def has_data(self, split: str) -> bool:
        return self.loaders.has(split)

    def loader(self, split: str, pipeline: str | None = None) -> DataLoader | None:
        """The loader of ``split`` for ``pipeline`` (default: the first pipeline that has one)."""
        return self.loaders.get((pipeline, split)) if pipeline is not None else self.loaders.first(split)
