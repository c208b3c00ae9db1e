"""``trainer.compile``: opt-in torch.compile that leaves checkpoints as plain, portable state dicts."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from expresso import ConfigError, load_config
from expresso.engine import Trainer
from expresso.engine.checkpoints.io import load_checkpoint


def trainer(compile_setting, tmp_path=None) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    generator = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(64, 8, generator=generator), torch.randint(0, 3, (64,), generator=generator))
    return Trainer(
        model=model,
        loss=nn.CrossEntropyLoss(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        train_data=data,
        settings={"max_epochs": 2, "batch_size": 16, "compile": compile_setting},
        run_dir=tmp_path,
    )


def test_compile_wraps_what_the_graph_calls_and_keeps_the_models_plain():
    compiled = trainer(True)
    model = compiled.graph.models["model"]
    assert isinstance(model, nn.Sequential)
    assert isinstance(compiled.graph.callables["model"], torch._dynamo.eval_frame.OptimizedModule)
    assert compiled.graph.callables["model"]._orig_mod is model
    eager = trainer(False)
    assert eager.graph.callables["model"] is eager.graph.models["model"]


def test_an_unknown_compile_mode_is_a_config_error_listing_the_modes(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config({"trainer": {"compile": "fastest"}})
    (problem,) = info.value.problems
    assert "trainer.compile" in str(problem) and "'max-autotune'" in str(problem)


@pytest.mark.slow
def test_a_compiled_fit_matches_the_eager_one_and_its_checkpoint_loads_without_compiling(tmp_path):
    compiled, eager = trainer(True, tmp_path), trainer(False)
    compiled.fit()
    eager.fit()
    for name, value in eager.graph.models["model"].state_dict().items():
        torch.testing.assert_close(compiled.graph.models["model"].state_dict()[name], value, rtol=1e-5, atol=1e-6)
    compiled.save_checkpoint(tmp_path / "c.ckpt")
    weights = load_checkpoint(tmp_path / "c.ckpt")["models"]["model"]
    assert sorted(weights) == sorted(eager.graph.models["model"].state_dict())  # no "_orig_mod." prefixes
    fresh = trainer(False)
    fresh.load_checkpoint(tmp_path / "c.ckpt", weights_only=True)
    assert all(torch.equal(weights[k], v) for k, v in fresh.graph.models["model"].state_dict().items())
