import logging

import torch
from torch import nn

from expresso.callbacks import ModelSummary
from expresso.callbacks.model_summary import summarize


def partly_frozen() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))  # 32 + 0 + 18 parameters
    model[0].requires_grad_(False)
    return model


def test_counts_each_child_and_the_totals_with_a_frozen_layer():
    summary = summarize(partly_frozen())
    assert summary.rows == [("0", "Linear", 32, 0), ("1", "ReLU", 0, 0), ("2", "Linear", 18, 18)]
    assert (summary.total, summary.trainable, summary.frozen) == (50, 18, 32)


def test_a_parameter_shared_by_two_children_counts_once_in_the_totals():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))  # 6 parameters each
    model[1].weight = model[0].weight  # tied: 4 shared + 2 + 2 biases
    summary = summarize(model)
    assert [row[2] for row in summary.rows] == [6, 6]
    assert summary.total == 8


def test_parameters_held_by_the_model_itself_get_their_own_row():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(4))
            self.body = nn.Linear(4, 4)

    assert summarize(Scaled()).rows == [("(own)", "Scaled", 4, 4), ("body", "Linear", 20, 20)]


def test_logs_a_table_per_model_at_fit_start(make_trainer, caplog):
    trainer = make_trainer(ModelSummary(), model=partly_frozen(), max_epochs=1)
    with caplog.at_level(logging.INFO, logger="expresso"):
        trainer.fit()
    assert caplog.messages == [
        "model 'model' (Sequential)\n"
        "  name  type    params  trainable\n"
        "  0     Linear      32          0\n"
        "  1     ReLU         0          0\n"
        "  2     Linear      18         18\n"
        "  total 50 parameters: 18 trainable, 32 frozen"
    ]
