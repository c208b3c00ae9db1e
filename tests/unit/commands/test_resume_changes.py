"""Which settings ``expresso resume`` applies and which it refuses, and the change record run.json keeps."""

import pytest

from expresso.commands.resume_changes import check_changes, describe, diff, refusal
from expresso.config import ConfigError


def test_the_diff_names_each_changed_value_with_both_sides_and_a_missing_side_left_out():
    old = {
        "optimizer": {"lr": 0.003, "betas": [0.9, 0.99]},
        "callbacks": [{"patience": 1}],
        "trainer": {"max_epochs": 6},
    }
    new = {
        "optimizer": {"lr": 0.001, "betas": [0.9, 0.999], "amsgrad": True},
        "callbacks": [{"patience": 1}, {"class": "x.Y"}],
        "trainer": {},
    }
    assert describe(diff(old, new)) == {
        "optimizer.lr": {"from": 0.003, "to": 0.001},
        "optimizer.betas.1": {"from": 0.99, "to": 0.999},
        "optimizer.amsgrad": {"to": True},
        "callbacks": {"from": [{"patience": 1}], "to": [{"patience": 1}, {"class": "x.Y"}]},
        "trainer.max_epochs": {"from": 6},
    }
    assert diff({"a": 1}, {"a": 1.0}) == {
        ("a",): {"from": 1, "to": 1.0}
    }  # an int that became a float is a change to record
    assert diff(old, old) == {}


@pytest.mark.parametrize(
    "key",
    [
        ("trainer", "max_epochs"),
        ("trainer", "max_steps"),
        ("trainer", "device"),
        ("trainer", "precision"),
        ("trainer", "gradient_clip_val"),
        ("trainer", "channels_last"),
        ("dataloader", "num_workers"),
        ("optimizer", "lr"),
        ("optimizers", "gen", "weight_decay"),
        ("optimizers", "gen", "scheduler", "T_max"),
        ("scheduler",),
        ("scheduler", "T_max"),
        ("callbacks",),
        ("callbacks", 0, "patience"),
        ("loggers",),
        ("loss", "label_smoothing"),
        ("losses", "cls", "weight"),
        ("stages", 2, "epochs"),
        ("stages", 2, "early_stopping", "patience"),
        ("predict", "scale"),
    ],
)
def test_what_a_resume_applies(key):
    assert refusal(key) is None


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (("model", "hidden"), "the checkpoint holds the weights of the model as it was"),
        (("dataset", "val_fraction"), "the checkpoint's loader position belongs to the data as it was"),
        (("metrics", "acc", "average"), "the checkpoint's running metric sums belong to the metrics as they were"),
        (("trainer", "seed"), "the random state continues from the checkpoint"),
        (("trainer", "batch_size"), "the checkpoint's loader position counts batches of the old size"),
        (
            ("trainer", "accumulate_grad_batches"),
            "the checkpoint's step count and loader position were counted in windows of the old size",
        ),
        (("trainer", "monitor"), "best.ckpt and the summary's best value were chosen by the old monitor"),
        (("dataloader", "shuffle"), "the checkpoint's loader position belongs to the old order of samples"),
        (("optimizer", "class"), "the checkpoint holds the state of the optimizer class as it was"),
        (
            ("optimizers", "gen", "models"),
            "the checkpoint's optimizer states belong to the parameters as they were grouped",
        ),
        (("losses", "cls", "inputs"), "a loss term reads the tensors it was wired to"),
        (
            ("stages", 1, "frozen"),
            "a stage's epochs and stop conditions can change on resume, not the rest of the stage plan",
        ),
    ],
)
def test_what_a_resume_refuses_and_why(key, reason):
    assert refusal(key).startswith(reason)


def test_a_restart_before_the_first_checkpoint_applies_every_change_but_the_experiment_name():
    # Nothing is restored from a checkpoint, so what a resume refuses to protect one (seed, model, data) applies.
    changes = diff(
        {"name": "a", "trainer": {"seed": 0, "batch_size": 64}, "model": {"hidden": [64]}},
        {"name": "a", "trainer": {"seed": 1, "batch_size": 32}, "model": {"hidden": [32]}},
    )
    check_changes(changes, restart=True)
    with pytest.raises(ConfigError) as refused:
        check_changes(changes)
    assert "trainer.seed" in str(refused.value) and "model.hidden" in str(refused.value)
    with pytest.raises(ConfigError, match="a resume cannot change it: the run folder is named after the experiment"):
        check_changes(diff({"name": "a"}, {"name": "b"}), restart=True)
