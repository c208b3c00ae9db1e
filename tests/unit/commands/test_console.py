"""What the console shows while a run trains on a terminal: log lines above the progress bar, never inside it."""

import functools
import io
import re

import torch
from rich.console import Console
from torch.utils.data import TensorDataset

from expresso.callbacks import Progress
from expresso.commands.session import attach_logging, detach_logging
from expresso.engine import Trainer

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_the_epoch_line_is_printed_above_the_bar_on_a_line_of_its_own():
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    data = TensorDataset(x, (x.sum(1) > 0).long())
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    handlers = attach_logging(None)
    try:
        Trainer(
            model=torch.nn.Linear(3, 2),
            loss=torch.nn.functional.cross_entropy,
            optimizer=functools.partial(torch.optim.SGD, lr=0.1),
            train_data=data,
            val_data=data,
            callbacks=[Progress(console=terminal)],
            settings={"max_epochs": 2, "batch_size": 4},
        ).fit()
    finally:
        detach_logging(handlers)
    shown = ANSI.sub("", screen.getvalue())
    # The bar redraws a line with \r; a log line written into it would follow the bar's last cell ("... loss 0.588epoch 1/2").
    lines = [
        line for line in re.split(r"[\r\n]", shown) if line.startswith("epoch 1/2  ") or line.startswith("epoch 2/2  ")
    ]
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all(re.fullmatch(r"epoch \d/2  train/loss=\S+  val/loss=\S+", line) for line in lines), lines
