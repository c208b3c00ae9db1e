"""``expresso eval`` and ``expresso predict`` on the runs conftest.py trains, all commands started together (``on_base``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runs import checkpoint_model, one_line_error, printed_metrics, read_history, read_record, table
from torch.nn import functional as F


# -- expresso eval -----------------------------------------------------------------------------------------
def test_eval_of_the_best_checkpoint_gives_the_test_metrics_the_training_reported(trained, base, on_base):
    result = on_base["results"]["eval-test"]
    assert result.returncode == 0, result.stderr
    written = json.loads((base / "eval-test.json").read_text())
    final = read_record(base)["summary"]["final"]["metrics"]
    assert written["checkpoint"] == str(base / "checkpoints" / "best.ckpt")
    assert written["split"] == "test"
    assert written["metrics"] == {"test/loss": final["test/loss"], "test/acc": final["test/acc"]}
    assert printed_metrics(trained["results"]["base"].stdout)["test/acc"] == f"{written['metrics']['test/acc']:.6g}"
    assert table(result.stdout) == [
        ["metric", "value"],
        ["test/loss", f"{final['test/loss']:.6g}"],
        ["test/acc", f"{final['test/acc']:.6g}"],
        [f"written: {base / 'eval-test.json'}"],
    ]


def test_eval_of_the_last_checkpoint_on_val_gives_the_last_epochs_validation(base, on_base):
    result = on_base["results"]["eval-last-val"]
    assert result.returncode == 0, result.stderr
    written = json.loads((base / "eval-val.json").read_text())
    summary = read_record(base)["summary"]
    last_epoch = read_history(base)[-1]
    assert written["checkpoint"] == str(base / "checkpoints" / "last.ckpt")
    assert written["metrics"] == {"val/loss": summary["metrics"]["val/loss"], "val/acc": summary["metrics"]["val/acc"]}
    assert repr(written["metrics"]["val/acc"]) == last_epoch["val/acc"]
    assert written["metrics"]["val/acc"] != summary["best"]  # not the best (first) epoch's weights


def test_eval_of_the_training_split_measures_the_checkpoint_in_evaluation_mode_on_every_training_image(base, on_base):
    from expresso.data import Digits

    result = on_base["results"]["eval-train"]
    assert result.returncode == 0, result.stderr
    written = json.loads((base / "eval-train.json").read_text())
    train = Digits(split="train")
    with torch.no_grad():  # by hand: the best checkpoint's model, dropout off, on all 1257 images at once
        logits = checkpoint_model(base, "best")(train.inputs)
    accuracy = (logits.argmax(1) == train.labels).double().mean().item()
    assert written["checkpoint"] == str(base / "checkpoints" / "best.ckpt")
    assert written["split"] == "train"
    assert written["metrics"].keys() == {"train/loss", "train/acc"}
    assert written["metrics"]["train/acc"] == pytest.approx(accuracy, abs=1e-6)
    assert written["metrics"]["train/loss"] == pytest.approx(F.cross_entropy(logits, train.labels).item(), rel=1e-5)
    assert table(result.stdout) == [
        ["metric", "value"],
        ["train/loss", f"{written['metrics']['train/loss']:.6g}"],
        ["train/acc", f"{written['metrics']['train/acc']:.6g}"],
        [f"written: {base / 'eval-train.json'}"],
    ]


def test_eval_of_a_run_whose_run_json_is_damaged_warns_and_measures_the_intact_checkpoint(base, on_base):
    """The config and the checkpoints are what eval needs: a damaged record is named once, not a refusal."""
    result = on_base["results"]["eval-damaged-record"]
    assert result.returncode == 0, result.stderr
    run = on_base["paths"]["damaged-record-run"]
    assert result.stderr.startswith(f"expresso: warning: {run / 'run.json'}: not a readable run record")
    damaged = json.loads((run / "eval-test.json").read_text())["metrics"]
    assert damaged == json.loads((base / "eval-test.json").read_text())["metrics"]


def test_eval_of_a_missing_run_folder_exits_2(on_base):
    line = one_line_error(on_base["results"]["eval-missing"])
    assert line.startswith(f"expresso: error: {on_base['paths']['missing']}: not a run folder"), line
    assert not on_base["paths"]["missing"].exists()


# -- expresso predict --------------------------------------------------------------------------------------
def read_csv_columns(path: Path) -> tuple[list[str], np.ndarray]:
    header = path.read_text().splitlines()[0].split(",")
    return header, np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def test_predict_writes_one_row_per_test_sample_predicting_the_argmax(base, on_base, digits_test_split):
    result = on_base["results"]["predict"]
    assert result.returncode == 0, result.stderr
    header, rows = read_csv_columns(base / "predictions-test.csv")
    assert header == ["prediction", *(f"output_{i}" for i in range(10))]
    assert rows.shape == (len(digits_test_split), 11)
    assert np.array_equal(rows[:, 0], rows[:, 1:].argmax(1))
    # The default checkpoint is best.ckpt: the one whose test accuracy the training reported.
    accuracy = float((rows[:, 0] == digits_test_split.labels.numpy()).mean())
    assert accuracy == pytest.approx(read_record(base)["summary"]["final"]["metrics"]["test/acc"], abs=1e-6)


def same_predictions(rows: np.ndarray, split_rows: np.ndarray) -> bool:
    """Equal predicted classes, and outputs equal up to the float error of another batch size."""
    return np.array_equal(rows[:, 0], split_rows[:, 0]) and np.allclose(
        rows[:, 1:], split_rows[:, 1:], rtol=1e-6, atol=1e-6
    )


def test_predict_on_raw_rows_in_an_npy_file_predicts_what_the_dataset_does_for_those_images(base, on_base):
    result = on_base["results"]["predict-npy"]
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == f"written: {base / 'predictions-x.csv'} (5 predictions, inputs prepared by Digits.prepare_inputs)\n"
    )
    header, rows = read_csv_columns(base / "predictions-x.csv")
    _, split_rows = read_csv_columns(base / "predictions-test.csv")
    assert header[0] == "prediction"
    assert rows.shape == (5, 11)
    assert same_predictions(
        rows, split_rows[:5]
    )  # load_digits().data rows, scaled by Digits.prepare_inputs as the dataset scales them


def test_predict_on_raw_rows_in_a_csv_file_with_a_header_row_writes_the_npy_output_asked_for(base, on_base):
    result = on_base["results"]["predict-csv"]
    assert result.returncode == 0, result.stderr
    written = np.load(on_base["paths"]["p.npy"])
    _, split_rows = read_csv_columns(base / "predictions-test.csv")
    assert written.shape == (3, 11)  # prediction, then the 10 outputs; the header row is no input
    assert np.array_equal(written[:, 0], written[:, 1:].argmax(1))
    assert same_predictions(written, split_rows[5:8])


def test_predict_refuses_raw_inputs_for_a_dataset_that_transforms_its_samples_without_prepare_inputs(on_base):
    line = one_line_error(on_base["results"]["predict-transformed"])
    assert line == (
        f"expresso: error: {on_base['paths']['folder'] / 'x.npy'}: the run's dataset WrappedDigits transforms its samples "
        "(its `transform` is set) and defines no prepare_inputs(raw), so these inputs would reach the model without that transform; "
        "define prepare_inputs(raw) on the dataset to apply it, or pass inputs already in the model's form with --inputs-prepared"
    )
    assert not on_base["paths"]["refused.csv"].exists()


def test_predict_with_inputs_prepared_feeds_the_file_to_the_model_as_given(base, on_base):
    result = on_base["results"]["predict-transformed-prepared"]
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == f"written: {on_base['paths']['prepared.csv']} (4 predictions, inputs used as given: --inputs-prepared)\n"
    )
    _, rows = read_csv_columns(on_base["paths"]["prepared.csv"])
    _, split_rows = read_csv_columns(base / "predictions-test.csv")
    assert same_predictions(rows, split_rows[:4])  # scaled.npy holds the test images as the dataset's samples hold them


def test_predict_for_a_dataset_without_prepare_inputs_or_transform_says_the_inputs_were_used_as_given(base, on_base):
    result = on_base["results"]["predict-plain"]
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == f"written: {on_base['paths']['plain.csv']} (4 predictions, inputs used as given: WrappedDigits defines no prepare_inputs)\n"
    )
    _, rows = read_csv_columns(on_base["paths"]["plain.csv"])
    _, split_rows = read_csv_columns(base / "predictions-test.csv")
    assert same_predictions(rows, split_rows[:4])


def test_predict_extra_arguments_without_a_predict_hook_exit_2(on_base):
    line = one_line_error(on_base["results"]["predict-extra-no-hook"])
    assert "['scale']" in line and "`predict` hook" in line, line
    assert not on_base["paths"]["nohook.csv"].exists()


def test_predict_extra_arguments_reach_the_configs_predict_hook(on_base, digits_test_split):
    result = on_base["results"]["predict-hook"]
    assert result.returncode == 0, result.stderr
    header, rows = read_csv_columns(on_base["paths"]["hook.csv"])
    assert header == ["prediction", "scale", "shift"]
    assert rows.shape == (len(digits_test_split), 3)
    assert set(rows[:, 1]) == {2.5} and set(rows[:, 2]) == {3.0}
    assert set(rows[:, 0]) <= set(range(10))


def test_predict_refuses_an_input_file_that_would_run_code_in_one_line_and_the_code_never_runs(on_base):
    """torch.load(weights_only=True) refuses the pickle; its message advises weights_only=False, which would run it."""
    line = one_line_error(on_base["results"]["predict-evil"])
    assert line == (
        f"expresso: error: {on_base['paths']['folder'] / 'evil.pt'}: holds objects other than tensors and plain data "
        "(posix.system), so it was not loaded; expected a tensor saved with torch.save"
    )
    assert not on_base["paths"]["evil-ran"].exists()
    assert not on_base["paths"]["evil.csv"].exists()
