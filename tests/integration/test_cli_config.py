"""``expresso config``: the resolved config on stdout, or one clear message and exit status 2.

Most tests call ``expresso.cli.main`` in-process; a handful start a real
process where only a real process can tell (exit status of the entry point,
what gets imported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import expresso
from expresso import ConfigError, load_config
from expresso.cli import main

UNSET_ENV = "EXPRESSO_CLI_TEST_UNSET_VARIABLE"


@dataclass
class BadInput:
    """One row of the table: files to write, arguments after ``config``, and the message expected."""

    files: dict
    argv: list
    where: str  # the file as displayed, or "command line"
    key: str | None  # the key path; None for a problem with the file as a whole
    phrases: tuple = field(default_factory=tuple)


GOOD = "model: {class: torch.nn.Linear, in_features: 3, out_features: 2}\n"
EXP = "configs/exp.yaml"

BAD_INPUTS = {
    "missing config file": BadInput(
        {EXP: GOOD},
        ["configs/exp.yml"],
        "configs/exp.yml",
        None,
        ("config file not found; did you mean 'configs/exp.yaml'?",),
    ),
    "config path is a folder": BadInput({EXP: GOOD}, ["configs"], "configs", None, ("is a folder, not a config file",)),
    "unsupported file extension": BadInput(
        {"configs/exp.toml": "a = 1\n"},
        ["configs/exp.toml"],
        "configs/exp.toml",
        None,
        ("unsupported config file type '.toml'; expected one of .yaml, .yml, .json, .py",),
    ),
    "missing referenced file": BadInput(
        {"configs/models/mlp.yaml": "class: a.MLP\n", EXP: "model: models/mpl.yaml\n"},
        [EXP],
        EXP,
        "model",
        ("file reference 'models/mpl.yaml' not found", "did you mean 'configs/models/mlp.yaml'?"),
    ),
    "extends cycle": BadInput(
        {"configs/a.yaml": "extends: b.yaml\n", "configs/b.yaml": "extends: a.yaml\n"},
        ["configs/a.yaml"],
        "configs/b.yaml",
        None,
        ("reference cycle: configs/a.yaml -> configs/b.yaml -> configs/a.yaml",),
    ),
    "misspelt top-level key": BadInput(
        {EXP: "modle: {class: a.Net}\n"},
        [EXP],
        EXP,
        "modle",
        ("unknown top-level key; did you mean 'model' or 'models'?",),
    ),
    "misspelt trainer key": BadInput(
        {EXP: "trainer: {max_epoch: 3}\n"},
        [EXP],
        EXP,
        "trainer.max_epoch",
        ("unknown trainer setting; did you mean 'max_epochs'?",),
    ),
    "misspelt class path": BadInput(
        {EXP: "optimizer: {class: torch.optim.AdamX}\n"},
        [EXP, "--check"],
        EXP,
        "optimizer.class",
        ("cannot import 'torch.optim.AdamX'", "did you mean ", "torch.optim.AdamW"),
    ),
    "misspelt module path": BadInput(
        {EXP: "optimizer: {class: torch.optm.AdamW}\n"},
        [EXP, "--check"],
        EXP,
        "optimizer.class",
        ("'torch' has no attribute 'optm'; did you mean torch.optim.AdamW?",),
    ),
    "unknown keyword argument": BadInput(
        {EXP: "optimizer: {class: torch.optim.AdamW, weight_decy: 0.1}\n"},
        [EXP, "--check"],
        EXP,
        "optimizer.weight_decy",
        ("unknown argument of torch.optim.AdamW", "did you mean 'weight_decay'?"),
    ),
    "missing required argument": BadInput(
        {EXP: "model: {class: torch.nn.Linear, in_features: 3}\n"},
        [EXP, "--check"],
        EXP,
        "model",
        ("missing required argument 'out_features' of torch.nn.Linear; set model.out_features",),
    ),
    "wrong type against a signature": BadInput(
        {EXP: "model: {class: torch.nn.Linear, in_features: three, out_features: 2}\n"},
        [EXP, "--check"],
        EXP,
        "model.in_features",
        ("received 'three' (str), expected an integer",),
    ),
    "wrong type of a setting": BadInput(
        {EXP: "trainer: {max_epochs: ten}\n"},
        [EXP],
        EXP,
        "trainer.max_epochs",
        ("received 'ten' (str), expected an integer",),
    ),
    "out-of-range value": BadInput(
        {EXP: "trainer: {max_epochs: 0}\n"}, [EXP], EXP, "trainer.max_epochs", ("received 0, expected a value >= 1",)
    ),
    "choice outside a Literal": BadInput(
        {EXP: "trainer: {mode: maximum}\n"}, [EXP], EXP, "trainer.mode", ("expected one of 'min', 'max'",)
    ),
    "bad YAML": BadInput(
        {EXP: "model:\n  class: a.Net\n hidden: 3\n"}, [EXP], EXP, None, ("invalid YAML at line 3, column 2: ",)
    ),
    "duplicate YAML key": BadInput(
        {EXP: "trainer: {seed: 1}\nmodel: {class: a.Net}\ntrainer: {seed: 2}\n"},
        [EXP],
        EXP,
        None,
        ("invalid YAML at line 3, column 1: duplicate key 'trainer'",),
    ),
    "bad JSON": BadInput(
        {"configs/exp.json": '{"trainer": {"seed": 1},\n "model": }\n'},
        ["configs/exp.json"],
        "configs/exp.json",
        None,
        ("invalid JSON at line 2, column 11: Expecting value",),
    ),
    "Python config without config": BadInput(
        {"configs/exp.py": "cfg = {}\n"},
        ["configs/exp.py"],
        "configs/exp.py",
        None,
        ("a Python config must define a dict named `config`",),
    ),
    "Python config that raises": BadInput(
        {"configs/exp.py": "config = {'trainer': {'seed': 1 / 0}}\n"},
        ["configs/exp.py"],
        "configs/exp.py",
        None,
        ("running the file raised ZeroDivisionError: division by zero",),
    ),
    "problem inside a referenced file": BadInput(
        {"configs/models/mlp.yaml": "hidden: 3\n", EXP: "model: models/mlp.yaml\n"},
        [EXP],
        "configs/models/mlp.yaml",
        "model",
        ("missing 'class'",),
    ),
    "interpolation to a missing key": BadInput(
        {EXP: "task: {num_classes: 3}\nmodel: {class: a.Net, out: '${task.num_clases}'}\n"},
        [EXP],
        EXP,
        "model.out",
        ("refers to 'task.num_clases', which is not in the config; did you mean 'task.num_classes'?",),
    ),
    "missing environment variable": BadInput(
        {EXP: f"task: {{root: '${{env:{UNSET_ENV}}}'}}\n"}, [EXP], EXP, "task.root", (f"'{UNSET_ENV}'",)
    ),
    "override of an unknown key": BadInput(
        {EXP: GOOD},
        [EXP, "trainer.max_epocs=3"],
        "command line",
        "trainer.max_epocs",
        ("unknown trainer setting; did you mean 'max_epochs'?",),
    ),
    "malformed override": BadInput(
        {EXP: GOOD},
        [EXP, "trainer.seed"],
        "command line",
        "trainer.seed",
        ("override 'trainer.seed' has no '='; write key.sub=value, +key=value or ~key",),
    ),
    "unparsable override value": BadInput(
        {EXP: GOOD}, [EXP, "callbacks=[0,1"], "command line", "callbacks", ("cannot read the value '[0,1' as YAML",)
    ),
    "override out of range": BadInput(
        {EXP: GOOD},
        [EXP, "trainer.batch_size=0"],
        "command line",
        "trainer.batch_size",
        ("received 0, expected a value >= 1",),
    ),
    "override naming a missing file": BadInput(
        {EXP: GOOD, "configs/models/cnn.yaml": "class: a.CNN\n"},
        [EXP, "model=models/cnm.yaml"],
        "command line",
        "model",
        ("file reference 'models/cnm.yaml' not found", "did you mean 'configs/models/cnn.yaml'?"),
    ),
    "component that is not a mapping": BadInput(
        {EXP: "loss: torch.nn.CrossEntropyLoss\n"},
        [EXP],
        EXP,
        "loss",
        ("received 'torch.nn.CrossEntropyLoss' (str), expected a mapping with a 'class' key (or a file reference)",),
    ),
    "strategy fsdp (FSDP2 is not built)": BadInput(
        {EXP: GOOD},
        [EXP, "trainer.strategy=fsdp"],
        "command line",
        "trainer.strategy",
        ("received 'fsdp', expected auto, single or ddp: fsdp (FSDP2) is not supported yet",),
    ),
    "eval_batch_size under dataloader (it moved beside trainer.batch_size)": BadInput(
        {EXP: GOOD + "dataloader: {eval_batch_size: 256}\n"},
        [EXP],
        EXP,
        "dataloader.eval_batch_size",
        ("received 256 (int), but this setting moved to trainer.eval_batch_size: write it there",),
    ),
    "plus on a key that exists": BadInput(
        {EXP: GOOD},
        [EXP, "+trainer.seed=3"],
        "command line",
        "trainer.seed",
        ("trainer.seed exists: write trainer.seed=... to replace it",),
    ),
    "misspelt logger": BadInput(
        {EXP: "loggers: [csvv]\n"}, [EXP], EXP, "loggers.0", ("unknown logger 'csvv'", "did you mean 'csv'?")
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_message_naming_file_and_key(case, write, in_tmp, monkeypatch, capsys):
    monkeypatch.delenv(UNSET_ENV, raising=False)
    write(case.files)
    code = main(["config", *case.argv])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err  # one problem, one line
    place = f"{case.where}: {case.key}: " if case.key else f"{case.where}: "
    assert err.startswith(f"expresso: error: {place}"), err
    for phrase in case.phrases:
        assert phrase in err


def test_table_covers_at_least_18_distinct_bad_inputs():
    assert len(BAD_INPUTS) >= 18
    assert len({(tuple(sorted(c.files.items())), tuple(c.argv)) for c in BAD_INPUTS.values()}) == len(BAD_INPUTS)


def test_several_problems_are_listed_together_one_per_line(write, in_tmp, capsys):
    write({EXP: "modle: {class: a.Net}\ntrainer: {max_epochs: 0, mode: maximum}\n"})
    assert main(["config", EXP]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "expresso: error: 3 problems in the config:",
        "  configs/exp.yaml: modle: unknown top-level key; did you mean 'model' or 'models'?",
        "  configs/exp.yaml: trainer.max_epochs: received 0, expected a value >= 1",
        "  configs/exp.yaml: trainer.mode: received 'maximum' (str), expected one of 'min', 'max'",
    ]


def test_debug_lets_the_error_propagate_as_a_traceback(write, in_tmp, capsys):
    write({EXP: "trainer: {max_epochs: 0}\n"})
    with pytest.raises(ConfigError) as info:
        main(["config", EXP, "--debug"])
    assert str(info.value) == "configs/exp.yaml: trainer.max_epochs: received 0, expected a value >= 1"
    assert capsys.readouterr().err == ""


def test_debug_before_the_command_also_shows_the_traceback(write, in_tmp):
    write({EXP: "trainer: {max_epochs: 0}\n"})
    with pytest.raises(ConfigError):
        main(["--debug", "config", EXP])


def test_prints_the_resolved_config_as_yaml(write, in_tmp, capsys):
    write({EXP: "extends: base.yaml\ntrainer: {seed: 3}\n", "configs/base.yaml": GOOD + "trainer: {max_epochs: 2}\n"})
    assert main(["config", EXP, "trainer.batch_size=8"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    printed = yaml.safe_load(out)
    assert printed == load_config(EXP, ["trainer.batch_size=8"]).to_dict()
    assert printed["model"] == {"class": "torch.nn.Linear", "in_features": 3, "out_features": 2}
    assert (printed["trainer"]["seed"], printed["trainer"]["max_epochs"], printed["trainer"]["batch_size"]) == (3, 2, 8)


def test_plus_list_appends_to_the_configured_callbacks_and_a_plain_list_replaces_them(write, in_tmp, capsys):
    """'+callbacks=[...]' once replaced the list: the configured EarlyStopping vanished without a word."""
    write({EXP: GOOD + "callbacks: [{class: expresso.callbacks.EarlyStopping, patience: 2}]\n"})
    assert main(["config", EXP, "+callbacks=[{class: expresso.callbacks.NaNGuard}]"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["callbacks"] == [
        {"class": "expresso.callbacks.EarlyStopping", "patience": 2},
        {"class": "expresso.callbacks.NaNGuard"},
    ]
    assert main(["config", EXP, "callbacks=[{class: expresso.callbacks.NaNGuard}]"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["callbacks"] == [{"class": "expresso.callbacks.NaNGuard"}]


def test_init_from_a_documented_root_key_is_set_without_plus(write, in_tmp, capsys):
    write({EXP: GOOD})
    assert main(["config", EXP, "init_from=runs/exp/20240101-000000-abcd:last"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["init_from"] == "runs/exp/20240101-000000-abcd:last"


def test_json_flag_prints_json_of_the_same_tree(write, in_tmp, capsys):
    write({EXP: GOOD + "task: {pattern: '\\${literal}', lr: 1e-3}\n"})
    assert main(["config", EXP, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = load_config(EXP).to_dict()
    expected["task"]["pattern"] = "\\${literal}"  # printed escaped, so that loading it again keeps it literal
    assert printed == expected
    assert printed["task"]["lr"] == 0.001


def test_json_printout_turns_integer_keys_into_strings_as_documented(write, in_tmp, capsys):
    """JSON has no integer keys: --json writes them as strings (the YAML printout is the exact record)."""
    write({EXP: "scheduler: {class: expresso.schedules.Piecewise, values: {0: 1.0e-3, 40: 1.0e-2}}\n"})
    assert main(["config", EXP, "--json"]) == 0
    write({"configs/printed.json": capsys.readouterr().out})
    assert load_config("configs/printed.json")["scheduler"]["values"] == {"0": 1.0e-3, "40": 1.0e-2}
    assert load_config(EXP)["scheduler"]["values"] == {0: 1.0e-3, 40: 1.0e-2}


def test_check_flag_prints_injected_task_values_but_not_into_loss_or_optimizer(write, in_tmp, capsys):
    write(
        {
            EXP: (
                "task: {num_classes: 5}\n"
                "model: {class: torch.nn.Linear, in_features: 3, out_features: 5}\n"
                "metrics: {acc: {class: torchmetrics.classification.MulticlassAccuracy}}\n"
                "loss: {class: torch.nn.CrossEntropyLoss}\n"
                "optimizer: {class: torch.optim.AdamW, lr: 0.01}\n"
            )
        }
    )
    assert main(["config", EXP, "--check"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["metrics"] == {"acc": {"class": "torchmetrics.classification.MulticlassAccuracy", "num_classes": 5}}
    assert printed["loss"] == {"class": "torch.nn.CrossEntropyLoss"}
    assert printed["optimizer"] == {"class": "torch.optim.AdamW", "lr": 0.01}


def test_without_check_nothing_is_injected(write, in_tmp, capsys):
    write({EXP: "task: {num_classes: 5}\nmetrics: {acc: {class: torchmetrics.classification.MulticlassAccuracy}}\n"})
    assert main(["config", EXP]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["metrics"] == {
        "acc": {"class": "torchmetrics.classification.MulticlassAccuracy"}
    }


def test_flags_may_come_before_the_overrides(write, in_tmp, capsys):
    write({EXP: GOOD})
    assert main(["config", EXP, "--json", "trainer.seed=4"]) == 0
    assert json.loads(capsys.readouterr().out)["trainer"]["seed"] == 4


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: expresso")


def test_version_flag_prints_the_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"expresso {expresso.__version__}\n"


def test_unknown_argument_is_an_argparse_error_with_status_2(write, in_tmp, capsys):
    write({EXP: GOOD})
    with pytest.raises(SystemExit) as info:
        main(["config", EXP, "--jsn"])
    assert info.value.code == 2
    assert "unrecognized arguments: --jsn" in capsys.readouterr().err


# -- real processes ------------------------------------------------------------


def run(args: list, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_python_m_expresso_help_exits_0(tmp_path):
    result = run([sys.executable, "-m", "expresso", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: expresso")
    assert "config" in result.stdout


def test_expresso_command_prints_the_config_as_yaml_and_exits_0(write):
    root = write({EXP: GOOD + "trainer: {max_epochs: 3}\n"})
    script = Path(sys.executable).with_name("expresso")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "expresso"]
    result = run([*command, "config", EXP, "+optimizer={class: torch.optim.SGD, lr: 0.1}", "+task.n=2"], root)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    printed = yaml.safe_load(result.stdout)
    assert printed["name"] == "exp"
    assert printed["trainer"]["max_epochs"] == 3
    assert printed["optimizer"] == {"class": "torch.optim.SGD", "lr": 0.1}
    assert printed["task"] == {"n": 2}


NO_HEAVY_IMPORTS = """\
import sys
from expresso.cli import main
{call}
heavy = sorted(name for name in ("torch", "omegaconf", "torchmetrics") if name in sys.modules)
print("imported:", heavy)
"""


def test_expresso_config_without_check_never_imports_torch(write):
    root = write(
        {
            EXP: (
                "model: {class: torch.nn.Linear, in_features: 3, out_features: 2}\n"
                "optimizer: {class: torch.optim.AdamW, lr: 1e-3}\n"
                "metrics: {acc: {class: torchmetrics.classification.MulticlassAccuracy}}\n"
            )
        }
    )
    code = NO_HEAVY_IMPORTS.format(call=f"assert main(['config', {EXP!r}]) == 0")
    result = run([sys.executable, "-c", code], root)
    assert result.returncode == 0, result.stderr
    # No ${...} in the config either, so OmegaConf stays unloaded too.
    assert result.stdout.splitlines()[-1] == "imported: []"


def test_expresso_help_imports_neither_torch_nor_omegaconf(tmp_path):
    call = textwrap.dedent(
        """\
        try:
            main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0
        """
    )
    result = run([sys.executable, "-c", NO_HEAVY_IMPORTS.format(call=call)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "imported: []"


def test_every_command_fixes_mkl_and_openmp_thread_counts_before_torch_loads_unless_the_user_set_them(
    write, in_tmp, monkeypatch
):
    # The tests above show no command imports torch before main() runs, so these reach MKL and OpenMP when they load.
    write({EXP: GOOD})
    monkeypatch.delenv("OMP_DYNAMIC", raising=False)
    monkeypatch.setenv("MKL_DYNAMIC", "TRUE")
    assert main(["config", EXP]) == 0
    assert os.environ["OMP_DYNAMIC"] == "FALSE"
    assert os.environ["MKL_DYNAMIC"] == "TRUE"  # what the user asked for stays
