"""``state_problem``: a saved optimizer state whose keys this optimizer would trip over is named before it is loaded."""

from __future__ import annotations

import copy

import pytest
import torch

from expresso.engine.checkpoints.optimizer_state import state_problem

# Every built-in optimizer that steps on dense gradients without a closure; Adafactor keeps other keys for 1-D and 2-D parameters.
OPTIMIZERS = [
    (torch.optim.AdamW, {}),
    (torch.optim.Adam, {"amsgrad": True}),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    (torch.optim.SGD, {"lr": 0.1}),
    (torch.optim.Adafactor, {}),
    (torch.optim.RMSprop, {"centered": True}),
    (torch.optim.Adagrad, {}),
    (torch.optim.NAdam, {}),
    (torch.optim.RAdam, {}),
    (torch.optim.Adamax, {}),
    (torch.optim.ASGD, {}),
    (torch.optim.Rprop, {}),
    (torch.optim.Adadelta, {}),
]


def stepped(kind, settings, scheduled: bool = False):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    optimizer = kind(model.parameters(), **settings)
    if scheduled:  # a scheduler adds `initial_lr` to every group
        torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    return optimizer


@pytest.mark.parametrize("kind, settings", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_sound_state_has_no_problem(kind, settings):
    optimizer = stepped(kind, settings, scheduled=True)
    assert state_problem(optimizer, optimizer.state_dict()) is None


@pytest.mark.parametrize(
    "kind, settings", [(torch.optim.AdamW, {}), (torch.optim.NAdam, {}), (torch.optim.Adam, {"amsgrad": True})]
)
def test_a_state_key_that_lost_a_bit_is_named_with_the_keys_the_optimizer_keeps(kind, settings):
    optimizer = stepped(kind, settings)
    saved = optimizer.state_dict()
    saved["state"][2] = {
        ("exp_avg_sp" if key == "exp_avg_sq" else key): value for key, value in saved["state"][2].items()
    }
    problem = state_problem(optimizer, saved)
    assert problem.startswith("the state of parameter 2 has keys [")
    assert "'exp_avg_sp'" in problem and f"{kind.__name__} keeps [" in problem and "'exp_avg_sq'" in problem


def test_a_group_missing_a_setting_is_named():
    optimizer = stepped(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9})
    saved = copy.deepcopy(optimizer.state_dict())
    saved["param_groups"][0]["mr"] = saved["param_groups"][0].pop("lr")
    assert state_problem(optimizer, saved).startswith("a parameter group lacks ['lr'] (it has [")


def test_not_a_state_at_all():
    optimizer = stepped(torch.optim.AdamW, {})
    assert (
        state_problem(optimizer, {"state": [], "param_groups": []})
        == "an optimizer state needs 'state' (a dict) and 'param_groups' (a list)"
    )


def test_an_optimizer_that_cannot_take_the_probe_step_is_not_checked():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.LBFGS(model.parameters())
    optimizer.step(lambda: model(torch.randn(4, 3)).sum().backward() or model(torch.randn(4, 3)).sum())
    saved = optimizer.state_dict()
    saved["state"][0] = {"renamed": 1, **saved["state"][0]}
    assert state_problem(optimizer, saved) is None  # LBFGS needs a closure: its keys cannot be asked
