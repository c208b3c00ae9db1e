"""``expresso new``: each template's project trains as written, straight after it is made, through the command line.

Also a Python experiment folder (the classification template's
experiments/00_baseline): ``expresso train .../wide.py`` trains what
``train_config`` builds from the layered hparams, ``expresso predict RUN
3 8`` hands ``3 8`` to ``infer_config``, and the run resumes.
"""

from __future__ import annotations

import csv

import pytest
import torch
from cli_runs import finish, one_line_error, only_run_dir, read_config, read_history, read_record, start, together

from expresso.commands.new import TEMPLATES_BY_NAME
from expresso.data import Digits

EXAMPLES = {
    "classification": ("configs/experiments/mlp.yaml", "mlp"),
    "autoencoder": ("configs/experiments/autoencoder.yaml", "autoencoder"),
    "gan": ("configs/experiments/gan.yaml", "gan"),
    "hparams": ("experiments/00_baseline/wide.py", "00_baseline-wide"),
}


# Seven processes (~28 s): CI runs the README's `expresso new demo`, its two trainings and its predict, and the
# unit tests check every template's files; each template trains here in `make test-slow`.
@pytest.mark.slow
def test_each_template_trains_right_after_expresso_new_and_its_experiment_folder_predicts(tmp_path):
    made = together({t: (["new", f"p_{t}", "--template", t], None) for t in TEMPLATES_BY_NAME}, tmp_path)
    for template, result in made.items():
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == f"next: cd p_{template} && expresso train {EXAMPLES[template][0]}"

    runs = tmp_path / "runs"
    trainings = {
        example: start(
            ["train", file, "--dev-run", "2", "--runs-root", runs],
            tmp_path / f"p_{'classification' if example == 'hparams' else example}",
        )
        for example, (file, _) in EXAMPLES.items()
    }
    for example, process in trainings.items():
        result = finish(process)
        assert result.returncode == 0, f"{example}\n{result.stderr}"
        run_dir = only_run_dir(runs, EXAMPLES[example][1])
        assert read_record(run_dir)["status"] == "completed"
    assert len(list((only_run_dir(runs, "gan") / "images").glob("x_fake-epoch001.png"))) == 1

    # The experiment folder's run: the layered hparams, train_config's config, the record predict reads.
    wide = only_run_dir(runs, "00_baseline-wide")
    hparams = {"hidden": [256, 128], "dropout": 0.2, "shift": 1, "lr": 3e-3, "weight_decay": 0.01}
    assert read_record(wide)["experiment"] == {
        "folder": str((tmp_path / "p_classification" / "experiments" / "00_baseline").resolve()),
        "file": "wide.py",
        "hparams": {**hparams, "epochs": 20, "batch_size": 64},
    }
    config = read_config(wide)
    assert config["model"] == {
        "class": "p_classification.models.MLP",
        "hidden": [256, 128],
        "dropout": 0.2,
        "num_classes": 10,  # injected from the task
    }
    assert config["dataset"]["transform"] == {"class": "p_classification.transforms.RandomShift", "pixels": 1}

    predicted = finish(start(["predict", wide, "3", "8", "--output", tmp_path / "p.csv"], tmp_path))
    assert predicted.returncode == 0, predicted.stderr
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    test_digits = Digits(split="test").labels  # the same stratified split, built by expresso's own dataset
    assert [int(row["digit"]) for row in rows] == test_digits[torch.isin(test_digits, torch.tensor([3, 8]))].tolist()
    assert all(0 < float(row["probability"]) <= 1 and 0 <= int(row["prediction"]) <= 9 for row in rows)
    assert predicted.stdout == f"written: {tmp_path / 'p.csv'} ({len(rows)} predictions)\n"

    # config.yaml holds what train_config returned: the run resumes like any other, its record kept.
    resumed = finish(start(["resume", wide, "trainer.max_epochs=2", "trainer.limit_epochs=2"], tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    assert [row["epoch"] for row in read_history(wide)] == ["1", "2"]
    record = read_record(wide)
    assert (record["status"], record["experiment"]["file"], record["resumes"][0]["from"]) == (
        "completed",
        "wide.py",
        {"epoch": 1, "step": 2},
    )


def test_expresso_new_refuses_a_bad_name_and_a_folder_that_holds_files(tmp_path):
    """Each refusal is one line, exit status 2, and nothing written."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    results = together(
        {
            "dash": (["new", "my-project"], None),
            "keyword": (["new", "class"], None),
            "module": (["new", "json"], None),
            "full": (["new", "taken"], None),
            "under-a-file": (["new", "fine", "--dir", "taken/notes.txt/fine"], None),
        },
        tmp_path,
    )
    expected = (
        "expected a Python identifier (letters, digits, underscores; not a keyword), as it names the project's package"
    )
    assert one_line_error(results["dash"]) == f"expresso: error: project name 'my-project': {expected}"
    assert one_line_error(results["keyword"]) == f"expresso: error: project name 'class': {expected}"
    assert one_line_error(results["module"]).startswith(
        "expresso: error: project name 'json': an installed module has that name ("
    )
    assert one_line_error(results["full"]) == (
        "expresso: error: taken: is a folder that is not empty; expresso new writes into an absent or empty folder"
    )
    assert one_line_error(results["under-a-file"]) == (
        "expresso: error: taken/notes.txt/fine: cannot write the project there (Not a directory)"
    )
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["notes.txt", "taken"]
