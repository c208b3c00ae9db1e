"""Exported weights (expresso/export.py): safetensors files of several models, tied weights, metadata, atomic writes, strict loads."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file

import expresso
from expresso.engine.checkpoints.errors import CheckpointError
from expresso.engine.checkpoints.io import save_atomic
from expresso.export import FORMAT, WeightsError, export_checkpoint, load_weights, read_metadata, save_weights


class Encoder(torch.nn.Module):
    """An embedding and a layer, with a head tied to the embedding (two names, one parameter) and a buffer."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(7, 4)
        self.layers = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
        self.head = torch.nn.Linear(4, 7, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("scale", torch.tensor([0.5, 2.0]))


class Decoder(torch.nn.Module):
    """A layer of its own and one shared with the encoder: the graph's models hold the same parameter."""

    def __init__(self, shared: torch.nn.Linear):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
        self.shared = shared
        self.norm = torch.nn.BatchNorm1d(4)  # an integer buffer (num_batches_tracked) too


def graph(seed: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)
    encoder = Encoder()
    return {"encoder": encoder, "decoder": Decoder(encoder.layers[0])}


def payload(models: dict[str, torch.nn.Module]) -> dict:
    """What a checkpoint holds, as far as export reads it."""
    return {
        "models": {name: model.state_dict() for name, model in models.items()},
        "loop": {"epoch": 3, "batch_index": 0, "step": 42, "stage": 0, "stage_epoch": 3, "stage_stopped": False},
        "config": {"name": "tied-graph"},
    }


def test_a_graph_of_two_models_with_tied_weights_round_trips_exactly(tmp_path):
    trained = graph(seed=0)
    trained["decoder"].norm.num_batches_tracked += 5
    save_atomic(payload(trained), tmp_path / "best.ckpt")  # torch.save keeps the ties: the loaded tensors share storage
    written = export_checkpoint(tmp_path / "best.ckpt", tmp_path / "out.safetensors")

    expected = {f"{name}.{key}": value for name, model in trained.items() for key, value in model.state_dict().items()}
    stored = load_file(tmp_path / "out.safetensors")
    assert sorted(stored) == sorted(expected) == sorted(written.tensors)
    assert "encoder.head.weight" in stored and "encoder.embed.weight" in stored and "decoder.shared.weight" in stored
    assert all(torch.equal(stored[key], expected[key]) and stored[key].dtype == expected[key].dtype for key in expected)
    assert written.models == ["encoder", "decoder"]

    fresh = graph(seed=1)
    assert not torch.equal(fresh["encoder"].embed.weight, trained["encoder"].embed.weight)
    load_weights(tmp_path / "out.safetensors", fresh)
    for name, model in trained.items():
        after = fresh[name].state_dict()
        assert after.keys() == model.state_dict().keys()
        assert all(torch.equal(after[key], value) for key, value in model.state_dict().items()), name
    # The ties the constructors made are still ties after the load.
    assert fresh["encoder"].head.weight is fresh["encoder"].embed.weight
    assert fresh["decoder"].shared is fresh["encoder"].layers[0]
    tokens = torch.tensor([1, 5, 6])
    with torch.no_grad():
        assert torch.equal(
            fresh["encoder"].head(fresh["encoder"].embed(tokens)),
            trained["encoder"].head(trained["encoder"].embed(tokens)),
        )


def test_tensors_are_stored_contiguous_on_the_cpu_and_the_source_is_untouched(tmp_path):
    weight = torch.arange(12.0).reshape(3, 4)
    state = {"t": weight.t(), "view": weight[1], "whole": weight}  # non-contiguous, and three names on one storage
    written = save_weights({"m": state}, tmp_path / "w.safetensors")
    stored = load_file(tmp_path / "w.safetensors")
    assert all(torch.equal(stored[f"m.{key}"], value) for key, value in state.items())
    assert all(tensor.is_contiguous() and tensor.device.type == "cpu" for tensor in written.tensors.values())
    assert torch.equal(weight, torch.arange(12.0).reshape(3, 4))


def test_metadata_records_versions_run_position_and_models(tmp_path):
    save_atomic(payload(graph(seed=0)), tmp_path / "last.ckpt")
    export_checkpoint(tmp_path / "last.ckpt", tmp_path / "out.safetensors", experiment="my-experiment")
    metadata = read_metadata(tmp_path / "out.safetensors")
    assert metadata == {
        "format": FORMAT,
        "format_version": "1",
        "expresso_version": expresso.__version__,
        "experiment": "my-experiment",
        "checkpoint": "last.ckpt",
        "epoch": "3",
        "step": "42",
        "batch_index": "0",
        "models": json.dumps(["encoder", "decoder"]),
    }
    assert all(isinstance(value, str) for value in metadata.values())
    export_checkpoint(tmp_path / "last.ckpt", tmp_path / "default.safetensors")
    assert (
        read_metadata(tmp_path / "default.safetensors")["experiment"] == "tied-graph"
    )  # the checkpoint's config names it


def test_a_single_model_file_loads_into_a_module(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    save_weights({"model": model}, tmp_path / "w.safetensors")
    assert sorted(load_file(tmp_path / "w.safetensors")) == [
        "model.0.bias",
        "model.0.weight",
        "model.2.bias",
        "model.2.weight",
    ]
    torch.manual_seed(1)
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    metadata = load_weights(tmp_path / "w.safetensors", fresh)
    assert metadata["models"] == '["model"]'
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    save_weights(graph(seed=0), tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match=r"w\.safetensors: holds 2 models \(encoder, decoder\); pass a dict"):
        load_weights(tmp_path / "w.safetensors", fresh)


def test_the_write_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    out = tmp_path / "export" / "best.safetensors"
    save_weights(graph(seed=0), out)
    assert sorted(path.name for path in out.parent.iterdir()) == ["best.safetensors"]
    before = out.read_bytes()

    def crash(fd):  # the new bytes are in the temporary file, not yet renamed, and the process is interrupted
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        save_weights(graph(seed=1), out)
    assert sorted(path.name for path in out.parent.iterdir()) == ["best.safetensors"]
    assert out.read_bytes() == before  # the old file, whole


def test_strict_load_names_the_file_and_every_missing_and_unexpected_key(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights({"model": torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))}, path)
    other = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))  # layer 1 is now layer 2
    before = [value.clone() for value in other.state_dict().values()]
    with pytest.raises(WeightsError) as error:
        load_weights(path, other)
    assert str(error.value) == (
        f"{path}: does not fit the models (missing keys: model.2.weight, model.2.bias; "
        "unexpected keys: model.1.bias, model.1.weight)"  # missing: in the model's order; unexpected: sorted
    )
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), before))  # nothing was loaded

    with pytest.raises(
        WeightsError,
        match=r"shape mismatch: model\.0\.bias \(2,\) in the file, \(4,\) in the model; model\.0\.weight \(2, 3\) in the file, \(4, 3\) in the model\)$",
    ):
        load_weights(path, torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(2, 1)))
    load_weights(path, other, strict=False)  # what matches: layer 0
    assert torch.equal(other[0].weight, load_file(path)["model.0.weight"])


def test_a_dict_of_models_must_match_the_files_models(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(graph(seed=0), path)
    with pytest.raises(WeightsError, match=r"models in the file but not given: decoder"):
        load_weights(path, {"encoder": Encoder()})
    load_weights(path, {"encoder": Encoder()}, strict=False)
    with pytest.raises(
        WeightsError, match=r"no weights for model\(s\) 'classifier'; the file has 'encoder', 'decoder'"
    ):
        load_weights(path, {**graph(seed=1), "classifier": torch.nn.Linear(1, 1)})


def test_files_that_are_not_expresso_weights_are_refused_naming_the_file(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(WeightsError, match=r"missing\.safetensors: weights file not found"):
        read_metadata(tmp_path / "missing.safetensors")
    (tmp_path / "random.safetensors").write_bytes(os.urandom(256))
    with pytest.raises(WeightsError, match=r"random\.safetensors: not a readable safetensors file"):
        load_weights(tmp_path / "random.safetensors", torch.nn.Linear(1, 1))
    save_file({"weight": torch.zeros(1, 1), "bias": torch.zeros(1)}, tmp_path / "plain.safetensors")
    with pytest.raises(WeightsError, match=r"plain\.safetensors: not an expresso weights file"):
        load_weights(tmp_path / "plain.safetensors", torch.nn.Linear(1, 1))


def test_export_refuses_bad_checkpoints_before_writing_anything(tmp_path):
    out = tmp_path / "export" / "x.safetensors"
    (tmp_path / "random.ckpt").write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match=r"random\.ckpt: not a readable checkpoint"):
        export_checkpoint(tmp_path / "random.ckpt", out)
    torch.save({"models": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointError, match=r"foreign\.ckpt: not an expresso checkpoint"):
        export_checkpoint(tmp_path / "foreign.ckpt", out)
    save_atomic({"models": {}}, tmp_path / "empty.ckpt")
    with pytest.raises(CheckpointError, match=r"empty\.ckpt: holds no model weights"):
        export_checkpoint(tmp_path / "empty.ckpt", out)
    assert not out.parent.exists()


def test_state_that_is_not_a_tensor_cannot_be_exported(tmp_path):
    with pytest.raises(
        WeightsError, match=r"model\._extra_state: cannot be stored as safetensors: a dict, not a tensor"
    ):
        save_weights({"model": {"weight": torch.zeros(1), "_extra_state": {"a": 1}}}, tmp_path / "w.safetensors")
    assert list(tmp_path.iterdir()) == []
