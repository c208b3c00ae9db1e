"""``expresso export``: a trained run's weights as safetensors, loaded back into a model built from the run's config.

Two dev runs (the digits MLP, and the autoencoder + classifier graph of three
models) are trained once for this module, then every export command runs at
once (``exported``), each a real ``python -m expresso export`` process on
real run folders.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
import yaml
from cli_runs import EXAMPLES, REPO, load, one_line_error, only_run_dir, together
from safetensors.torch import load_file

from expresso.export import load_weights, read_metadata

EXPERIMENTS = EXAMPLES / "configs" / "experiments"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("export-runs")
    results = together(
        {
            "mlp": (["train", EXPERIMENTS / "digits_mlp.yaml", "--dev-run", "2", "--runs-root", root], None),
            "graph": (
                ["train", EXPERIMENTS / "digits_ae_classifier.yaml", "--dev-run", "1", "--runs-root", root],
                None,
            ),
        },
        cwd=REPO,
    )
    for result in results.values():
        assert result.returncode == 0, result.stderr
    return {"mlp": only_run_dir(root, "digits-mlp"), "graph": only_run_dir(root, "digits-ae-classifier")}


def with_config(run_dir, copy, key: str, value):
    """A copy of ``run_dir`` whose config.yaml (and run.json, for a name) sets ``key``: the name, trainer.seed or optimizer.lr."""
    shutil.copytree(run_dir, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    {"name": config, "seed": config["trainer"], "lr": config["optimizer"]}[key][key] = value
    (copy / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if key == "name":
        record = json.loads((copy / "run.json").read_text())
        (copy / "run.json").write_text(json.dumps({**record, "name": value}))
    return copy


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory) -> dict:
    """Every export command, at once; their results, and the paths they were given."""
    folder = tmp_path_factory.mktemp("export")
    damaged_run = folder / "damaged-run"  # a copy of the MLP run whose best.ckpt is random bytes
    shutil.copytree(runs["mlp"], damaged_run)
    (damaged_run / "checkpoints" / "best.ckpt").write_bytes(os.urandom(4096))
    paths = {
        "folder": folder,
        "damaged_run": damaged_run,
        "random.ckpt": folder / "random.ckpt",
        "last": folder / "weights" / "mlp-last.safetensors",
        "refused": folder / "refused" / "x.safetensors",
    }
    paths["random.ckpt"].write_bytes(os.urandom(4096))
    # Copies of the MLP run whose config.yaml says another experiment (the very same models), another seed, another lr.
    for copy, key, value in [("renamed", "name", "digits-mlp-b"), ("reseeded", "seed", 7), ("relr", "lr", 0.5)]:
        paths[copy] = with_config(runs["mlp"], folder / copy, key, value)
    paths["relr-out"] = folder / "relr.safetensors"
    theirs = runs["mlp"] / "checkpoints" / "best.ckpt"
    refused = ["--output", paths["refused"]]
    commands = {
        "mlp": ["export", runs["mlp"]],
        "mlp-last": [
            "export",
            runs["mlp"],
            "--checkpoint",
            "last",
            "--format",
            "safetensors",
            "--output",
            paths["last"],
        ],
        "graph": ["export", runs["graph"]],
        "onnx": ["export", runs["mlp"], "--format", "onnx", *refused],
        "damaged-best": ["export", damaged_run],
        "random-path": ["export", runs["mlp"], "--checkpoint", paths["random.ckpt"], *refused],
        "missing": ["export", runs["mlp"], "--checkpoint", folder / "no-such.ckpt", *refused],
        "not-a-run": ["export", folder, *refused],
        "other-experiment": [
            "export",
            runs["mlp"],
            "--checkpoint",
            runs["graph"] / "checkpoints" / "last.ckpt",
            *refused,
        ],
        "same-models": ["export", paths["renamed"], "--checkpoint", theirs, *refused],
        "other-seed": ["export", paths["reseeded"], "--checkpoint", theirs, *refused],
        "other-lr": ["export", paths["relr"], "--checkpoint", theirs, "--output", paths["relr-out"]],
    }
    results = together({name: (args, None) for name, args in commands.items()}, cwd=folder)
    return {"results": results, "paths": paths}


def fresh_trainer(run_dir):
    """The run's models as its config builds them (initial weights), in a trainer that can predict."""
    from expresso import load_config
    from expresso.assembly import build_trainer

    config = load_config(run_dir / "config.yaml", check=True)
    return build_trainer(config, None, training=False)


def test_export_writes_the_best_checkpoints_weights_and_they_load_back_into_a_model_built_from_the_config(
    runs, exported
):
    run_dir, result = runs["mlp"], exported["results"]["mlp"]
    assert result.returncode == 0, result.stderr
    path = run_dir / "export" / "best.safetensors"
    assert result.stdout == f"written: {path} (6 tensors, 1 model)\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.safetensors"]  # no temporary file left

    checkpoint = load(run_dir / "checkpoints" / "best.ckpt")
    weights = checkpoint["models"]["model"]
    stored = load_file(path)
    assert sorted(stored) == sorted(f"model.{key}" for key in weights)
    assert "model.layers.1.weight" in stored

    metadata = read_metadata(path)
    assert metadata["format"] == "expresso-weights" and metadata["format_version"] == "1"
    assert metadata["experiment"] == "digits-mlp" and metadata["checkpoint"] == "best.ckpt"
    assert (metadata["epoch"], metadata["step"]) == (str(checkpoint["loop"]["epoch"]), str(checkpoint["loop"]["step"]))
    assert json.loads(metadata["models"]) == ["model"]

    exported_trainer = fresh_trainer(run_dir)
    model = exported_trainer.graph.models["model"]
    assert not all(
        torch.equal(model.state_dict()[key], value) for key, value in weights.items()
    )  # the load has work to do
    load_weights(path, model)
    assert model.state_dict().keys() == weights.keys()
    assert all(torch.equal(model.state_dict()[key], value) for key, value in weights.items())

    reference = fresh_trainer(run_dir)
    reference.load_checkpoint(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    data = reference.loader("test").dataset
    assert torch.equal(exported_trainer.predict(data), reference.predict(data))  # the same predictions, bit for bit


def test_export_of_the_last_checkpoint_to_a_given_path(runs, exported):
    result, out = exported["results"]["mlp-last"], exported["paths"]["last"]
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"written: {out} (6 tensors, 1 model)\n"
    weights = load(runs["mlp"] / "checkpoints" / "last.ckpt")["models"]["model"]
    stored = load_file(out)
    assert sorted(stored) == sorted(f"model.{key}" for key in weights)
    assert all(torch.equal(stored[f"model.{key}"], value) for key, value in weights.items())
    assert read_metadata(out)["checkpoint"] == "last.ckpt"


def test_a_graph_of_three_models_exports_every_models_tensors(runs, exported):
    run_dir, result = runs["graph"], exported["results"]["graph"]
    assert result.returncode == 0, result.stderr
    source = run_dir / "checkpoints" / "best.ckpt"
    if not source.is_file():  # best falls back to last when no metric was monitored
        source = run_dir / "checkpoints" / "last.ckpt"
    path = run_dir / "export" / f"{source.stem}.safetensors"
    checkpoint = load(source)["models"]
    tensors = sum(len(weights) for weights in checkpoint.values())
    assert result.stdout == f"written: {path} ({tensors} tensors, 3 models)\n"

    stored = load_file(path)
    assert {key.split(".", 1)[0] for key in stored} == {"encoder", "decoder", "classifier"}
    assert {"encoder.layers.1.weight", "decoder.layers.1.weight", "classifier.layers.1.weight"} <= set(stored)
    assert sorted(stored) == sorted(f"{name}.{key}" for name, weights in checkpoint.items() for key in weights)
    assert json.loads(read_metadata(path)["models"]) == ["encoder", "decoder", "classifier"]

    models = fresh_trainer(run_dir).graph.models
    load_weights(path, dict(models))
    for name, weights in checkpoint.items():
        assert models[name].state_dict().keys() == weights.keys()
        assert all(torch.equal(models[name].state_dict()[key], value) for key, value in weights.items()), name


def test_an_unknown_format_is_a_usage_error(exported):
    result = exported["results"]["onnx"]
    assert result.returncode == 2
    assert "argument --format: invalid choice: 'onnx'" in result.stderr
    assert not exported["paths"]["refused"].parent.exists()


def test_bad_input_exits_2_with_one_line_naming_the_file_and_writes_nothing(exported):
    results, paths = exported["results"], exported["paths"]
    damaged = paths["damaged_run"] / "checkpoints" / "best.ckpt"
    assert one_line_error(results["damaged-best"]).startswith(f"expresso: error: {damaged}: ")
    assert one_line_error(results["random-path"]).startswith(
        f"expresso: error: {paths['random.ckpt']}: not a readable checkpoint"
    )
    assert (
        one_line_error(results["missing"])
        == f"expresso: error: {paths['folder'] / 'no-such.ckpt'}: checkpoint not found"
    )
    assert one_line_error(results["not-a-run"]).startswith(f"expresso: error: {paths['folder']}: not a run folder")
    assert not (paths["damaged_run"] / "export").exists()
    assert not paths["refused"].parent.exists()
    assert all(
        result.stdout == ""
        for name, result in results.items()
        if name in ("damaged-best", "random-path", "missing", "not-a-run")
    )


def test_a_checkpoint_of_another_experiment_or_run_is_refused_naming_both_and_nothing_is_written(runs, exported):
    """Even with the very same models (a copy of the run that names another experiment): the export would claim them."""
    results, paths = exported["results"], exported["paths"]
    graph, theirs = runs["graph"] / "checkpoints" / "last.ckpt", runs["mlp"] / "checkpoints" / "best.ckpt"
    assert one_line_error(results["other-experiment"]) == (
        f"expresso: error: {graph}: a checkpoint of experiment 'digits-ae-classifier', not of {runs['mlp']} "
        "(experiment 'digits-mlp'); export it from its own run folder"
    )
    assert one_line_error(results["same-models"]) == (
        f"expresso: error: {theirs}: a checkpoint of experiment 'digits-mlp', not of {paths['renamed']} "
        "(experiment 'digits-mlp-b'); export it from its own run folder"
    )
    assert one_line_error(results["other-seed"]) == (
        f"expresso: error: {theirs}: a checkpoint of another run of 'digits-mlp', not of {paths['reseeded']}: its config "
        "differs from the run's config.yaml in trainer.seed, which no run changes while it trains; export it from its own run folder"
    )
    assert not paths["refused"].parent.exists()
    assert not any((paths[copy] / "export").exists() for copy in ("renamed", "reseeded"))


def test_a_checkpoint_from_outside_the_run_folder_that_differs_only_in_what_a_resume_changes_is_exported(
    runs, exported
):
    """A learning rate is a setting the run may have been resumed with: no evidence of another run."""
    result, out = exported["results"]["other-lr"], exported["paths"]["relr-out"]
    assert result.returncode == 0, result.stderr
    weights = load(runs["mlp"] / "checkpoints" / "best.ckpt")["models"]["model"]
    stored = load_file(out)
    assert stored.keys() == {f"model.{key}" for key in weights}
    assert all(torch.equal(stored[f"model.{key}"], value) for key, value in weights.items())
    assert read_metadata(out)["experiment"] == "digits-mlp"
