"""Which trials a sweep plans: their order, overrides and numbers; the same command finds the same sweep id."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from expresso.config import ConfigError, load_config
from expresso.sweeps.plan import plan_series, plan_sweep
from expresso.sweeps.spec import parse

BASE = Path(__file__).resolve().parents[3] / "examples/digits/configs/experiments/digits_mlp.yaml"


@pytest.fixture
def config(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "exp.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        extends: {BASE}
        name: exp
        sweep:
          search: random
          parameters: {{optimizer.lr: {{log-uniform: [1.0e-4, 1.0e-2]}}, trainer.seed: {{choice: [0, 1, 2]}}}}
          trials: 3
          seed: 5
        """)
    )
    return path


def planned(path: Path, **flags):
    loaded = load_config(path)
    spec = parse(loaded["sweep"], loaded.where, monitor="val/acc", mode="max", **flags)
    return plan_sweep(str(path), [], Path("runs"), None, spec, None, loaded)


def test_a_random_search_plans_the_same_trials_and_id_whatever_the_jobs(config):
    first, again = planned(config), planned(config, jobs=4)
    assert [t.params for t in first.trials] == [t.params for t in again.trials]
    assert first.sweep_id == again.sweep_id and first.folder.path == Path("runs/exp") / f"sweep-{first.sweep_id}"
    assert [t.number for t in first.trials] == [0, 1, 2]
    lr, seed = first.trials[0].params["optimizer.lr"], first.trials[0].params["trainer.seed"]
    assert first.trials[0].overrides == (f"optimizer.lr={lr}", f"trainer.seed={seed}", "~sweep")


def test_another_seed_is_another_sweep(config):
    other = config.read_text().replace("seed: 5", "seed: 6")
    (config.parent / "other.yaml").write_text(other)
    assert planned(config).sweep_id != planned(config.parent / "other.yaml").sweep_id


def test_a_series_is_one_trial_per_entry_then_per_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(
        f"extends: {BASE}\nname: a\nseries:\n  - {{trainer.seed: 1}}\n  - {{model.dropout: 0.2}}\n"
    )
    Path("b.yaml").write_text(f"extends: {BASE}\nname: b\n")
    sweep = plan_series(["a.yaml", "b.yaml"], ["trainer.max_epochs=1"], Path("runs"), None)
    assert [(t.number, str(t.config), t.overrides) for t in sweep.trials] == [
        (0, "a.yaml", ("trainer.max_epochs=1", "trainer.seed=1", "~series")),
        (1, "a.yaml", ("trainer.max_epochs=1", "model.dropout=0.2", "~series")),
        (2, "b.yaml", ("trainer.max_epochs=1",)),
    ]
    assert sweep.name == tmp_path.name  # two names: the folder's


def test_a_series_refuses_a_config_with_a_sweep_section(config):
    with pytest.raises(ConfigError, match=r"exp\.yaml: sweep: a sweep runs with `expresso sweep CONFIG`, not train$"):
        plan_series([str(config)], [], Path("runs"), None)
