"""The same work through the peers: Lightning (defaults and minimal), ignite and Accelerate.

Each is written the way its documentation teaches, on the loaders, model and
seeds of ``workload.py``, with accuracy computed in a validation pass every
epoch. Each library is imported inside its function: a peer that is not
installed costs nothing and is reported as missing. The clock covers the
call that trains (``Trainer.fit``, ``Engine.run``, the epoch loop after
``accelerator.prepare``), as for expresso's ``fit()``.

- Lightning defaults: ``Trainer(max_epochs, accelerator="cpu", devices=1)``
  and nothing else: progress bar, the default logger (CSV here, TensorBoard
  when it is installed), a checkpoint each epoch, model summary, the 2-batch
  sanity validation.
- Lightning minimal: progress bar, logger, checkpointing and model summary
  off, no sanity validation: the loop alone.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from . import workload
from .cases import Case


def lightning(case: Case, workdir: Path, minimal: bool, epochs: int | None = None) -> dict:
    import lightning as L

    warnings.filterwarnings("ignore")  # "few workers" and similar advice, not part of the work
    logging.getLogger("lightning").setLevel(logging.WARNING)

    class Classifier(L.LightningModule):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net, self.loss_fn = net, nn.CrossEntropyLoss()
            self.correct, self.seen, self.accuracy = 0, 0, float("nan")

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.loss_fn(self.net(x), y)

        def on_validation_epoch_start(self):
            self.correct, self.seen = 0, 0

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.correct += (self.net(x).argmax(1) == y).sum()
            self.seen += len(y)

        def on_validation_epoch_end(self):
            accuracy = self.correct / self.seen
            self.log("val_acc", accuracy)
            self.accuracy = float(accuracy)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=case.lr)

    class FirstStep(L.Callback):
        at: float | None = None

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if self.at is None:
                self.at = time.time()

    module = Classifier(workload.build_model(case))
    train_loader, val_loader, _ = workload.loaders(case)
    first = FirstStep()
    options = {}
    if minimal:
        options = dict(
            enable_progress_bar=False,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
    trainer = L.Trainer(
        max_epochs=epochs or case.epochs,
        accelerator="cpu",
        devices=1,
        default_root_dir=str(workdir),
        callbacks=[first],
        **options,
    )
    start = time.perf_counter()
    trainer.fit(module, train_loader, val_loader)
    seconds = time.perf_counter() - start
    return workload.fit_result(seconds, first.at, module.accuracy, trainer.global_step)


def ignite(case: Case, workdir: Path, epochs: int | None = None) -> dict:
    from ignite.engine import Events, create_supervised_evaluator, create_supervised_trainer
    from ignite.metrics import Accuracy

    model = workload.build_model(case)
    optimizer = torch.optim.Adam(model.parameters(), lr=case.lr)
    train_loader, val_loader, order = workload.loaders(case)
    trainer = create_supervised_trainer(model, optimizer, nn.CrossEntropyLoss())
    evaluator = create_supervised_evaluator(model, metrics={"acc": Accuracy()})
    found = {"first_step_at": None, "val_acc": float("nan")}

    @trainer.on(Events.EPOCH_STARTED)
    def _order(engine):
        order.set_epoch(engine.state.epoch - 1)  # ignite counts epochs from 1

    @trainer.on(Events.ITERATION_COMPLETED(once=1))
    def _first_step(engine):
        found["first_step_at"] = time.time()

    @trainer.on(Events.EPOCH_COMPLETED)
    def _validate(engine):
        evaluator.run(val_loader)
        found["val_acc"] = evaluator.state.metrics["acc"]

    start = time.perf_counter()
    trainer.run(train_loader, max_epochs=epochs or case.epochs)
    seconds = time.perf_counter() - start
    return workload.fit_result(seconds, found["first_step_at"], found["val_acc"], trainer.state.iteration)


def accelerate(case: Case, workdir: Path, epochs: int | None = None) -> dict:
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    torch.set_num_threads(1)  # the same single thread as every other run, whatever Accelerate decided
    model = workload.build_model(case)
    optimizer = torch.optim.Adam(model.parameters(), lr=case.lr)
    loss_fn = nn.CrossEntropyLoss()
    train_loader, val_loader, _ = workload.loaders(case)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    first_step_at, steps, accuracy = None, 0, float("nan")

    start = time.perf_counter()
    for epoch in range(epochs or case.epochs):
        train_loader.set_epoch(epoch)
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            accelerator.backward(loss)
            optimizer.step()
            steps += 1
            if first_step_at is None:
                first_step_at = time.time()
        model.eval()
        correct, seen = 0, 0
        with torch.inference_mode():
            for x, y in val_loader:
                predictions, targets = accelerator.gather_for_metrics((model(x).argmax(1), y))
                correct += (predictions == targets).sum()
                seen += len(targets)
        accuracy = float(correct) / seen
    seconds = time.perf_counter() - start
    return workload.fit_result(seconds, first_step_at, accuracy, steps)
