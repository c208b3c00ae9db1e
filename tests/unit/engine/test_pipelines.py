"""Pipelines: several kinds of batch through one graph, interleaved in a configured order, with their own updates."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from expresso.engine import Callback, Graph, LossTerm, Node, OptimizerSpec, Trainer
from expresso.engine.graph import GraphError
from expresso.engine.interleave import interleave
from expresso.engine.pipeline import Pipeline, Update
from expresso.engine.stages import Stage


def data(n: int, seed: int, labelled: bool = True) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    return TensorDataset(x, (x[:, 0] > 0).long()) if labelled else TensorDataset(x)


def ae_graph() -> Graph:
    """encoder x -> z; decoder z -> x_hat; head z -> y_hat: reconstruction and classification share the encoder."""
    torch.manual_seed(0)
    models = {"encoder": nn.Linear(4, 3), "decoder": nn.Linear(3, 4), "head": nn.Linear(3, 2)}
    params = lambda *names: [p for name in names for p in models[name].parameters()]  # noqa: E731
    return Graph(
        models=models,
        nodes=[Node("encoder", ("x",), ("z",)), Node("decoder", ("z",), ("x_hat",)), Node("head", ("z",), ("y_hat",))],
        losses=[LossTerm("recon", F.mse_loss, ("x_hat", "x")), LossTerm("cls", F.cross_entropy, ("y_hat", "y"))],
        optimizers={
            "ae": OptimizerSpec(torch.optim.SGD(params("encoder", "decoder"), lr=0.1), ["encoder", "decoder"]),
            "cls": OptimizerSpec(torch.optim.SGD(params("head"), lr=0.1), ["head"]),
        },
    )


def two_pipelines(labelled: int = 8, unlabelled: int = 16) -> list[Pipeline]:
    return [
        Pipeline("classify", train_data=data(labelled, 1), val_data=data(4, 3), losses=["cls"]),
        Pipeline("reconstruct", train_data=data(unlabelled, 2, labelled=False), losses=["recon"], batch=["x"]),
    ]


class Seen(Callback):
    """The pipeline of every training batch, in order."""

    def __init__(self):
        self.pipelines: list[str] = []

    def on_batch_start(self, state):
        self.pipelines.append(state.pipeline)


def fit(graph, pipelines, stages=None, callbacks=(), **settings) -> Trainer:
    trainer = Trainer(
        graph=graph,
        pipelines=pipelines,
        stages=stages,
        callbacks=callbacks,
        settings={"max_epochs": 1, "batch_size": 4, "device": "cpu", **settings},
        dataloader={"shuffle": False},
    )
    trainer.fit()
    return trainer


# -- interleaving ------------------------------------------------------------------


def test_interleave_schedules_round_robin_ratio_and_sequential_until_every_pipeline_is_used_up():
    lengths = {"a": 2, "b": 4}
    assert interleave(lengths, ["a", "b"]) == ["a", "b", "a", "b", "b", "b"]
    assert interleave(lengths, ["b", "a"], {"b": 2, "a": 1}) == ["b", "b", "a", "b", "b", "a"]
    assert interleave({"a": 5, "b": 1}, ["a", "b"], {"a": 2, "b": 1}) == ["a", "a", "b", "a", "a", "a"]
    assert interleave(lengths, ["a", "b"], "sequential") == ["a", "a", "b", "b", "b", "b"]


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("round_robin", ["classify", "reconstruct"] * 2 + ["reconstruct"] * 2),
        ({"reconstruct": 3, "classify": 1}, ["classify"] + ["reconstruct"] * 3 + ["classify", "reconstruct"]),
        ("sequential", ["classify"] * 2 + ["reconstruct"] * 4),
    ],
)
def test_an_epoch_runs_the_pipelines_batches_in_exactly_the_configured_order(mode, expected):
    seen = Seen()
    stage = Stage(train=["classify", "reconstruct"], interleave=mode)
    trainer = fit(ae_graph(), two_pipelines(), [stage], [seen], max_epochs=2)
    assert seen.pipelines == expected * 2
    assert trainer.state.step == 12


def test_each_pipeline_steps_the_optimizers_of_its_own_models_and_reports_its_own_metrics():
    graph = ae_graph()
    head_before = copy.deepcopy(graph.models["head"].state_dict())
    trainer = fit(graph, two_pipelines(), [Stage(train=["reconstruct"], val=[])])
    assert all(
        torch.equal(head_before[k], v) for k, v in graph.models["head"].state_dict().items()
    )  # no batch reached it
    assert sorted(trainer.state.metrics) == ["train/reconstruct/loss"]

    trainer = fit(ae_graph(), two_pipelines(), [Stage(train=["classify", "reconstruct"])])
    assert sorted(trainer.state.metrics) == ["train/classify/loss", "train/reconstruct/loss", "val/classify/loss"]


def test_a_pipeline_runs_only_the_nodes_its_losses_need():
    trainer = fit(ae_graph(), two_pipelines(), [Stage(train=["reconstruct"], val=[])])
    plan = trainer.plans["reconstruct"]
    assert [trainer.graph.nodes[i].name for i in plan.nodes] == [
        "encoder",
        "decoder",
    ]  # the batch has no y: the head cannot run


def test_a_pipeline_reading_a_tensor_its_batch_lacks_fails_naming_pipeline_node_and_tensor():
    pipelines = [Pipeline("reconstruct", train_data=data(8, 2, labelled=False), losses=["recon", "cls"], batch=["x"])]
    with pytest.raises(GraphError) as caught:
        Trainer(graph=ae_graph(), pipelines=pipelines, settings={"device": "cpu"})
    assert (
        str(caught.value)
        == "loss term 'cls' reads tensor 'y', which neither the batch ['x'] of pipeline 'reconstruct' nor any node writes"
    )


# -- alternating updates in one batch (a GAN) --------------------------------------------------


def gan():
    torch.manual_seed(0)
    models = {"generator": nn.Linear(2, 4), "discriminator": nn.Linear(4, 1)}
    return models, {
        "gen": torch.optim.SGD(models["generator"].parameters(), lr=0.1),
        "disc": torch.optim.SGD(models["discriminator"].parameters(), lr=0.2),
    }


def bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def test_alternating_discriminator_and_generator_updates_equal_the_hand_written_gan_step():
    models, optimizers = gan()
    graph = Graph(
        models=models,
        nodes=[
            Node("generator", ("noise",), ("fake",)),
            Node("discriminator", ("x",), ("d_real",), name="d_real"),
            Node("discriminator", ("fake",), ("d_fake",), name="d_fake", detach=True),
            Node("discriminator", ("fake",), ("d_gen",), name="d_gen"),
        ],
        losses=[
            LossTerm("real", lambda d: bce(d, 1.0), ("d_real",)),
            LossTerm("fake", lambda d: bce(d, 0.0), ("d_fake",)),
            LossTerm("gen", lambda d: bce(d, 1.0), ("d_gen",)),
        ],
        optimizers={
            name: OptimizerSpec(opt, [name[:3] == "gen" and "generator" or "discriminator"])
            for name, opt in optimizers.items()
        },
    )
    noise, real = (
        torch.randn(8, 2, generator=torch.Generator().manual_seed(5)),
        torch.randn(8, 4, generator=torch.Generator().manual_seed(6)),
    )
    pipeline = Pipeline(
        "gan",
        train_data=TensorDataset(noise, real),
        batch=["noise", "x"],
        updates=[Update(["real", "fake"], ["disc"], "discriminator"), Update(["gen"], ["gen"], "generator")],
    )
    reference = copy.deepcopy(models)
    fit(graph, [pipeline])

    G, D = reference["generator"], reference["discriminator"]
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.2)
    for start in (0, 4):
        z, x = noise[start : start + 4], real[start : start + 4]
        fake = G(z)
        (bce(D(x), 1.0) + bce(D(fake.detach()), 0.0)).backward()
        opt_d.step()
        opt_g.zero_grad(), opt_d.zero_grad()
        bce(D(fake), 1.0).backward()
        opt_g.step()
        opt_g.zero_grad(), opt_d.zero_grad()
    for name in models:
        assert all(torch.equal(a, b) for a, b in zip(models[name].parameters(), reference[name].parameters())), name


# -- graph nodes: functions, hooks, one model in two nodes ------------------------------------


def test_a_function_node_adapts_outputs_and_hooks_see_and_replace_a_nodes_tensors():
    torch.manual_seed(0)
    grads = []
    scale = lambda node, outputs: {"y_hat": outputs["y_hat"] * 2}  # noqa: E731
    record = lambda node, tensor, grad: grads.append((node, tensor, grad.shape))  # noqa: E731
    model = nn.Linear(4, 3)
    graph = Graph(
        models={"m": model},
        nodes=[
            Node("m", forward_hooks=[scale], backward_hooks=[record]),
            Node(function=lambda t: t.argmax(dim=1), inputs=("y_hat",), outputs=("pred",), name="argmax"),
        ],
        losses=[LossTerm("ce", F.cross_entropy)],
    )
    x = torch.randn(5, 4)
    tensors = graph.forward({"x": x, "y": torch.zeros(5, dtype=torch.long)})
    assert torch.equal(tensors["y_hat"], model(x) * 2) and torch.equal(tensors["pred"], (model(x) * 2).argmax(dim=1))
    graph.loss(tensors).backward()
    assert grads == [("m", "y_hat", torch.Size([5, 3]))]


def test_one_model_in_two_nodes_needs_a_name_per_node():
    with pytest.raises(GraphError) as caught:
        Graph(models={"d": nn.Linear(4, 1)}, nodes=[Node("d", ("a",), ("da",)), Node("d", ("b",), ("db",))], losses=[])
    assert str(caught.value) == "graph nodes 0 and 1 are both named 'd': give each node its own name"


# -- input adapters ----------------------------------------------------------------------


def test_input_adapters_name_tuple_dataclass_and_named_tuple_batches_or_call_a_function():
    import collections
    import dataclasses

    @dataclasses.dataclass
    class Batch:
        image: torch.Tensor
        label: torch.Tensor

    Pair = collections.namedtuple("Pair", ["image", "label"])
    x, y = torch.zeros(2, 4), torch.ones(2)
    assert Pipeline(batch=["image", "label"]).tensors((x, y)) == {"image": x, "label": y}
    assert Pipeline().tensors(Batch(x, y)) == {"image": x, "label": y}
    assert Pipeline().tensors(Pair(x, y)) == {"image": x, "label": y}
    assert Pipeline(batch=lambda b: {"x": b[0] * 2}).tensors((x, y))["x"].eq(0).all()
    with pytest.raises(ValueError, match=r"a batch of 2 parts cannot take the 3 names \['a', 'b', 'c'\]"):
        Pipeline(batch=["a", "b", "c"]).tensors((x, y))
    names = Pipeline(train_data=data(4, 0, labelled=False), batch=None).batch_names()
    assert names == ["x"]  # read from one sample when the dataset does not declare them
