import inspect
import io
import logging
import sys
import types

import pytest
import torch
import torchmetrics
from rich.console import Console
from torch import nn
from torch.utils.data import TensorDataset

from expresso.callbacks import Progress
from expresso.callbacks import progress as progress_module
from expresso.engine import Callback, Event
from expresso.engine.callback import Dispatcher


def zero_model() -> nn.Linear:
    """Logits are always zero and lr is 0: every loss is exactly ln 2, the accuracy the share of class 0."""
    model = nn.Linear(3, 2)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    return model


def quarter_class_zero(n: int) -> TensorDataset:
    return TensorDataset(torch.randn(n, 3), torch.tensor([0, 1, 1, 1] * (n // 4)))


@pytest.fixture
def not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())


def fit_with(progress, make_trainer, caplog, max_epochs=2):
    """Messages the expresso logger received during a 2-epoch fit of 4 batches per epoch."""
    trainer = make_trainer(
        progress,
        model=zero_model(),
        lr=0.0,
        max_epochs=max_epochs,
        data=quarter_class_zero(16),
        val_data=quarter_class_zero(8),
        metrics={"acc": torchmetrics.classification.MulticlassAccuracy(num_classes=2, average="micro")},
    )
    with caplog.at_level(logging.INFO, logger="expresso"):
        trainer.fit()
    return [r.getMessage() for r in caplog.records if r.name == "expresso"]


def test_plain_mode_logs_one_line_per_epoch_with_every_metric(not_a_terminal, make_trainer, caplog):
    assert fit_with(Progress(), make_trainer, caplog) == [
        "epoch 1/2  train/loss=0.6931  train/acc=0.25  val/loss=0.6931  val/acc=0.25",
        "epoch 2/2  train/loss=0.6931  train/acc=0.25  val/loss=0.6931  val/acc=0.25",
    ]


def test_plain_mode_adds_a_line_every_n_steps_when_asked(not_a_terminal, make_trainer, caplog):
    assert fit_with(Progress(plain_every_n_steps=3), make_trainer, caplog) == [
        "epoch 1/2  step 3  loss=0.6931",
        "epoch 1/2  train/loss=0.6931  train/acc=0.25  val/loss=0.6931  val/acc=0.25",
        "epoch 2/2  step 6  loss=0.6931",
        "epoch 2/2  train/loss=0.6931  train/acc=0.25  val/loss=0.6931  val/acc=0.25",
    ]


def test_plain_mode_is_not_called_per_batch_unless_step_lines_are_asked(not_a_terminal):
    epoch_lines, step_lines = Progress(), Progress(plain_every_n_steps=10)
    assert isinstance(epoch_lines, Progress) and isinstance(step_lines, Progress)
    assert Dispatcher([epoch_lines]).handlers(Event.BATCH_END, "fit") == []
    assert len(Dispatcher([step_lines]).handlers(Event.BATCH_END, "fit")) == 1


def test_a_terminal_gets_a_bar_showing_the_epoch(make_trainer, caplog):
    console = Console(force_terminal=True, file=io.StringIO(), width=120)
    progress = Progress(console=console)
    assert len(Dispatcher([progress]).handlers(Event.BATCH_END, "fit")) == 1
    messages = fit_with(progress, make_trainer, caplog, max_epochs=3)
    output = console.file.getvalue()
    assert "epoch 3/3" in output and "4/4" in output
    assert messages[-1] == "epoch 3/3  train/loss=0.6931  train/acc=0.25  val/loss=0.6931  val/acc=0.25"


class LossLog(Callback):
    def __init__(self):
        self.losses = []

    def on_batch_end(self, state):
        self.losses.append(f"loss {state.outputs['loss'].item():.4g}")


@pytest.mark.parametrize(("seconds_per_batch", "shown"), [(0.0, [0]), (1.0, list(range(8)))], ids=["fast", "slow"])
def test_the_bar_reads_the_loss_at_most_refresh_per_second_times_a_second(
    make_trainer, monkeypatch, seconds_per_batch, shown
):
    clock = iter(range(1000))
    fake_time = types.SimpleNamespace(monotonic=lambda: next(clock) * seconds_per_batch)
    monkeypatch.setattr(progress_module, "time", fake_time)
    console = Console(force_terminal=True, file=io.StringIO(), width=200)
    losses = LossLog()
    make_trainer(Progress(refresh_per_second=2, console=console), losses, max_epochs=2, val=False).fit()
    output = console.file.getvalue()
    assert len(set(losses.losses)) == 8  # every batch's loss differs, so the bar's text says which it read
    assert [i for i, loss in enumerate(losses.losses) if loss in output] == shown


def test_the_bar_gives_the_terminal_back_when_the_fit_fails(make_trainer):
    class Boom(Callback):
        def on_epoch_end(self, state):
            raise RuntimeError("boom")

    console = Console(force_terminal=True, file=io.StringIO())
    streams = sys.stdout, sys.stderr
    trainer = make_trainer(Progress(console=console), Boom())
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit()
    # A live display redirects the standard streams while it runs; stopped, it hands them back.
    assert (sys.stdout, sys.stderr) == streams
    assert console.file.getvalue().endswith("\x1b[?25h")  # the cursor is shown again


def test_the_config_check_sees_the_real_parameters():
    assert list(inspect.signature(Progress).parameters) == ["refresh_per_second", "plain_every_n_steps", "console"]
