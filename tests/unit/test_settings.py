"""The typed settings (expresso/settings.py): a torch-free leaf; the Python API refuses what ``--check`` refuses."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from torch import nn

from expresso.engine import Trainer
from expresso.settings import DataLoaderConfig, TrainerConfig, from_mapping


def test_the_settings_import_no_torch():
    code = (
        "import sys, expresso.settings; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\n"


def test_a_mapping_becomes_the_typed_object_with_the_defaults_filled():
    settings = from_mapping(TrainerConfig, {"max_epochs": 3, "eval_batch_size": 256})
    assert settings == TrainerConfig(max_epochs=3, eval_batch_size=256)
    assert (settings.batch_size, settings.monitor) == (64, "val/loss")
    assert from_mapping(TrainerConfig, None) == TrainerConfig()
    given = TrainerConfig(seed=4)
    assert from_mapping(TrainerConfig, given) == given


def test_the_trainer_reads_its_settings_as_typed_objects():
    trainer = Trainer(model=nn.Linear(3, 2), settings={"max_epochs": 3, "device": "cpu"}, dataloader={"shuffle": False})
    assert trainer.settings == TrainerConfig(max_epochs=3, device="cpu")
    assert trainer.loader_settings == DataLoaderConfig(shuffle=False)


@pytest.mark.parametrize(
    "cls, given, message",
    [
        (
            DataLoaderConfig,
            {"eval_batch_size": 32},
            "DataLoaderConfig setting 'eval_batch_size': received 32, but this setting moved to trainer.eval_batch_size: write it there",
        ),
        (
            TrainerConfig,
            {"strategy": "fsdp"},
            "TrainerConfig setting 'strategy': received 'fsdp', expected auto, single or ddp: fsdp (FSDP2) is not supported yet",
        ),
        (TrainerConfig, {"max_epoch": 3}, "unknown TrainerConfig setting(s): ['max_epoch']"),
    ],
    ids=["moved", "refused", "unknown"],
)
def test_the_python_api_refuses_what_check_refuses(cls, given, message):
    with pytest.raises(TypeError, match=f"^{re.escape(message)}"):
        from_mapping(cls, given)


def test_a_moved_setting_left_null_sets_nothing():
    """Run folders written before eval_batch_size moved hold ``dataloader.eval_batch_size: null``."""
    assert from_mapping(DataLoaderConfig, {"eval_batch_size": None, "shuffle": False}) == DataLoaderConfig(
        shuffle=False
    )
