"""The model graph: named tensors between models, weighted loss terms, one optimizer per group of models."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from expresso.engine import Callback, Graph, LossTerm, Node, OptimizerSpec, Trainer
from expresso.engine.graph import GraphError, batch_to_tensors, default_step

W_CLS, W_REG = 0.7, 0.3
LR_A, LR_B = 0.1, 0.05


class Samples(Dataset):
    """12 samples as dicts: features ``x``, a class ``y`` and a regression target ``t``."""

    def __init__(self, n: int = 12):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=generator)
        self.y = (self.x[:, 0] > 0).long() + (self.x[:, 1] > 0).long()  # 3 classes
        self.t = self.x.sum(dim=1, keepdim=True)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i], "t": self.t[i]}


def mse(prediction, target):
    return ((prediction - target) ** 2).mean()


def two_head_models() -> dict[str, nn.Module]:
    """encoder: x -> z; head1: z -> logits; adapter (in no optimizer): z -> z2; head2: z2 -> r."""
    torch.manual_seed(0)
    return {"encoder": nn.Linear(4, 6), "head1": nn.Linear(6, 3), "adapter": nn.Linear(6, 6), "head2": nn.Linear(6, 1)}


def two_head_graph(models: dict[str, nn.Module], lr_b: float = LR_B) -> Graph:
    params = lambda *names: [p for name in names for p in models[name].parameters()]  # noqa: E731
    return Graph(
        models=models,
        nodes=[
            Node("encoder", ("x",), ("z",)),
            Node("head1", ("z",), ("logits",)),
            Node("adapter", ("z",), ("z2",)),
            Node("head2", ("z2",), ("r",)),
        ],
        losses=[LossTerm("cls", F.cross_entropy, ("logits", "y"), W_CLS), LossTerm("reg", mse, ("r", "t"), W_REG)],
        optimizers={
            "A": OptimizerSpec(torch.optim.SGD(params("encoder", "head1"), lr=LR_A), ["encoder", "head1"]),
            "B": OptimizerSpec(torch.optim.SGD(params("head2"), lr=lr_b), ["head2"]),
        },
    )


def fit_graph(graph: Graph, callbacks=(), val: bool = False, **settings) -> Trainer:
    trainer = Trainer(
        graph=graph,
        train_data=Samples(),
        val_data=Samples(8) if val else None,
        callbacks=callbacks,
        settings={"max_epochs": 1, "batch_size": 4, "device": "cpu", **settings},
        # in the training process: these tests are about the graph, and idle loader workers cost seconds to stop
        dataloader={"shuffle": False, "num_workers": 0},
    )
    trainer.fit()
    return trainer


def by_hand(models: dict[str, nn.Module], lr_b: float = LR_B) -> None:
    """The same epoch as a plain PyTorch loop: batches of 4 in order, one SGD per group of models."""
    data = Samples()
    opt_a = torch.optim.SGD([*models["encoder"].parameters(), *models["head1"].parameters()], lr=LR_A)
    opt_b = torch.optim.SGD(models["head2"].parameters(), lr=lr_b)
    for start in range(0, len(data), 4):
        x, y, t = data.x[start : start + 4], data.y[start : start + 4], data.t[start : start + 4]
        z = models["encoder"](x)
        loss = W_CLS * F.cross_entropy(models["head1"](z), y) + W_REG * mse(models["head2"](models["adapter"](z)), t)
        loss.backward()
        opt_a.step()
        opt_b.step()
        for model in models.values():
            model.zero_grad(set_to_none=True)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class GradientNorms(Callback):
    """Whether each model had a non-zero gradient after the first backward."""

    def __init__(self):
        self.nonzero: dict[str, bool] = {}

    def on_after_backward(self, state):
        if not self.nonzero:
            for name, model in state.models.items():
                self.nonzero[name] = any(
                    p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters()
                )


# -- training through the graph ------------------------------------------------


def test_two_optimizers_update_exactly_their_models_as_a_hand_written_loop_does():
    models = two_head_models()
    expected = copy.deepcopy(models)
    before_adapter = weights(models["adapter"])
    grads = GradientNorms()

    fit_graph(two_head_graph(models), [grads])
    by_hand(expected)

    for name in ("encoder", "head1", "head2"):
        assert same_weights(weights(models[name]), weights(expected[name])), name
    assert grads.nonzero == {"encoder": True, "head1": True, "adapter": True, "head2": True}
    # The adapter receives gradients but no optimizer names it: it never moves.
    assert same_weights(weights(models["adapter"]), before_adapter)


def test_an_optimizer_with_lr_zero_leaves_its_model_unchanged_while_the_other_trains():
    models = two_head_models()
    before = {name: weights(model) for name, model in models.items()}

    fit_graph(two_head_graph(models, lr_b=0.0))

    changed = {name: not same_weights(weights(model), before[name]) for name, model in models.items()}
    assert changed == {"encoder": True, "head1": True, "adapter": False, "head2": False}


def test_the_loss_is_the_weighted_sum_of_the_terms_computed_by_hand():
    models = two_head_models()
    graph = two_head_graph(models)
    batch = Samples()
    tensors = default_step(graph, {"x": batch.x[:4], "y": batch.y[:4], "t": batch.t[:4]})

    z = models["encoder"](batch.x[:4])
    cls = F.cross_entropy(models["head1"](z), batch.y[:4])
    reg = mse(models["head2"](models["adapter"](z)), batch.t[:4])
    assert torch.equal(tensors["loss/cls"], cls.detach())
    assert torch.equal(tensors["loss/reg"], reg.detach())
    assert torch.equal(tensors["loss"], W_CLS * cls + W_REG * reg)
    assert tensors["loss"].requires_grad and not tensors["loss/cls"].requires_grad
    assert sorted(tensors) == ["logits", "loss", "loss/cls", "loss/reg", "r", "t", "x", "y", "z", "z2"]


class TermRecorder(Callback):
    def __init__(self):
        self.rows: list[tuple[int, float, float, float]] = []

    def on_after_forward(self, state):
        out = state.outputs
        self.rows.append((len(out["y"]), out["loss/cls"].item(), out["loss/reg"].item(), out["loss"].item()))


def test_each_loss_term_is_logged_as_its_own_sample_weighted_metric():
    recorder = TermRecorder()
    trainer = fit_graph(two_head_graph(two_head_models()), [recorder], val=True, batch_size=5)  # batches 5, 5, 2

    sizes = [row[0] for row in recorder.rows]
    assert sizes == [5, 5, 2]
    mean = lambda column: sum(row[0] * row[column] for row in recorder.rows) / 12  # noqa: E731
    metrics = trainer.state.metrics
    assert sorted(metrics) == [
        "train/loss",
        "train/loss/cls",
        "train/loss/reg",
        "val/loss",
        "val/loss/cls",
        "val/loss/reg",
    ]
    assert metrics["train/loss/cls"] == pytest.approx(mean(1), abs=1e-6)
    assert metrics["train/loss/reg"] == pytest.approx(mean(2), abs=1e-6)
    assert metrics["train/loss"] == pytest.approx(mean(3), abs=1e-6)
    assert metrics["val/loss"] == pytest.approx(
        W_CLS * metrics["val/loss/cls"] + W_REG * metrics["val/loss/reg"], abs=1e-6
    )


def test_a_single_loss_term_is_not_duplicated_as_a_loss_slash_name_tensor():
    graph = Graph(models={"m": nn.Linear(4, 3)}, nodes=[Node("m")], losses=[LossTerm("ce", F.cross_entropy)])
    tensors = default_step(graph, {"x": torch.randn(2, 4), "y": torch.tensor([0, 2])})
    assert sorted(tensors) == ["loss", "x", "y", "y_hat"]


# -- wiring -------------------------------------------------------------------


def test_a_node_with_several_outputs_stores_each_under_its_name():
    class Split(nn.Module):
        def forward(self, x):
            return x[:, :2], x[:, 2:]

    graph = Graph(models={"split": Split()}, nodes=[Node("split", ("x",), ("left", "right"))], losses=[])
    x = torch.arange(8.0).reshape(2, 4)
    tensors = graph.forward({"x": x})
    assert torch.equal(tensors["left"], x[:, :2]) and torch.equal(tensors["right"], x[:, 2:])


class Returns(nn.Module):
    """Returns what ``make`` builds from its input: a list, a tuple, a dict..."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def forward(self, x):
        return self.make(x)


def test_a_returned_list_or_tuple_maps_onto_the_declared_outputs_by_position():
    x = torch.arange(4.0)
    one = Graph(models={"m": Returns(lambda x: [x + 1])}, nodes=[Node("m")], losses=[]).forward({"x": x})
    assert torch.equal(one["y_hat"], x + 1)  # TorchAssistant's `return [x]`: the element, not the list
    two = Graph(
        models={"m": Returns(lambda x: [x + 1, x + 2])}, nodes=[Node("m", outputs=("a", "b"))], losses=[]
    ).forward({"x": x})
    assert torch.equal(two["a"], x + 1) and torch.equal(two["b"], x + 2)


def test_a_dict_or_a_tensor_for_one_declared_output_is_stored_as_it_is():
    x = torch.arange(4.0)
    out = Graph(models={"m": Returns(lambda x: {"logits": x})}, nodes=[Node("m")], losses=[]).forward({"x": x})
    assert out["y_hat"].keys() == {"logits"} and out["y_hat"]["logits"] is x


@pytest.mark.parametrize(
    "make, outputs, message",
    [
        (
            lambda x: (x, x),
            ("y_hat",),
            "graph node 'm' (model 'm') returned a tuple of 2 values, but declares 1 output name ['y_hat']: "
            "declare one name per value in the config's graph node ({model: m, inputs: [x], outputs: [y_hat, y_hat_1]}), or return 1 value",
        ),
        (
            lambda x: [],
            ("y_hat",),
            "graph node 'm' (model 'm') returned a list of 0 values, but declares 1 output name ['y_hat']: "
            "declare one name per value in the config's graph node ({model: m, inputs: [x], outputs: []}), or return 1 value",
        ),
        (
            lambda x: x,
            ("a", "b"),
            "graph node 'm' (model 'm') returned one Tensor, but declares 2 output names ['a', 'b']: "
            "declare one name per value in the config's graph node ({model: m, inputs: [x], outputs: [a]}), or return 2 values",
        ),
        (
            lambda x: (x, x, x),
            ("a", "b"),
            "graph node 'm' (model 'm') returned a tuple of 3 values, but declares 2 output names ['a', 'b']: "
            "declare one name per value in the config's graph node ({model: m, inputs: [x], outputs: [a, b, a_2]}), or return 2 values",
        ),
    ],
)
def test_a_count_mismatch_names_the_node_what_it_returned_and_the_fix(make, outputs, message):
    graph = Graph(models={"m": Returns(make)}, nodes=[Node("m", outputs=outputs)], losses=[])
    with pytest.raises(GraphError) as info:
        graph.forward({"x": torch.zeros(2)})
    assert (str(info.value), info.value.at) == (message, ("graph", 0))


def test_a_function_node_returning_too_many_values_is_named_by_its_node():
    graph = Graph(models={}, nodes=[Node(function=torch.sort, name="sort", outputs=("s",))], losses=[])
    with pytest.raises(GraphError) as info:
        graph.forward({"x": torch.tensor([2.0, 1.0])})
    assert str(info.value) == (
        "graph node 'sort' returned a tuple of 2 values, but declares 1 output name ['s']: "
        "declare one name per value in the config's graph node (outputs: [s, s_1]), or return 1 value"
    )


def test_a_node_naming_an_unknown_model_fails_naming_the_node_index_and_the_models():
    with pytest.raises(ValueError) as caught:
        Graph(
            models={"encoder": nn.Linear(4, 6), "head1": nn.Linear(6, 3)},
            nodes=[Node("encoder", ("x",), ("z",)), Node("haed1", ("z",))],
            losses=[],
        )
    assert str(caught.value) == "graph node 1 names model 'haed1', which is not among ['encoder', 'head1']"


def test_a_tensor_written_by_two_nodes_fails_naming_the_node_and_the_tensor():
    models = {"encoder": nn.Linear(4, 6), "head1": nn.Linear(6, 3), "head2": nn.Linear(6, 3)}
    nodes = [Node("encoder", ("x",), ("z",)), Node("head1", ("z",), ("y_hat",)), Node("head2", ("z",), ("y_hat",))]
    with pytest.raises(ValueError) as caught:
        Graph(models=models, nodes=nodes, losses=[])
    assert str(caught.value) == "graph node 2 (head2) writes tensor 'y_hat', already written by head1"


def test_an_optimizer_naming_an_unknown_model_fails_naming_the_optimizer_and_the_model():
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError) as caught:
        Graph(
            models={"m": model},
            nodes=[Node("m")],
            losses=[],
            optimizers={"A": OptimizerSpec(optimizer, ["m", "encoder"])},
        )
    assert str(caught.value) == "optimizer 'A' names unknown model(s) ['encoder']"


def test_a_node_reading_a_missing_tensor_raises_key_error_naming_the_node_and_the_tensor():
    models = {"encoder": nn.Linear(4, 6), "head": nn.Linear(6, 3)}
    graph = Graph(models=models, nodes=[Node("encoder", ("x",), ("z",)), Node("head", ("h",))], losses=[])
    with pytest.raises(KeyError) as caught:
        graph.forward({"x": torch.randn(2, 4), "y": torch.tensor([0, 1])})
    assert caught.value.args[0] == "graph node 'head' reads tensor 'h', which is not in ['x', 'y', 'z']"


def test_nodes_listed_out_of_order_run_writers_before_readers():
    torch.manual_seed(0)
    models = {"encoder": nn.Linear(4, 6), "head": nn.Linear(6, 3), "other": nn.Linear(4, 2)}
    listed = Graph(
        models=models,
        nodes=[Node("head", ("z",), ("y_hat",)), Node("other", ("x",), ("o",)), Node("encoder", ("x",), ("z",))],
        losses=[],
    )
    assert [node.model for node in listed.ordered] == [
        "other",
        "encoder",
        "head",
    ]  # free nodes keep the configured order
    x = torch.randn(2, 4)
    assert torch.equal(listed.forward({"x": x})["y_hat"], models["head"](models["encoder"](x)))


def test_a_cycle_fails_naming_each_node_and_the_tensor_it_reads():
    models = {"a": nn.Linear(4, 4), "b": nn.Linear(4, 4), "c": nn.Linear(4, 4)}
    nodes = [Node("c", ("r",), ("out",)), Node("a", ("x2",), ("r",)), Node("b", ("r",), ("x2",))]
    with pytest.raises(ValueError) as caught:
        Graph(models=models, nodes=nodes, losses=[])
    assert str(caught.value) == "graph nodes form a cycle: a reads 'x2' from b, b reads 'r' from a"


def test_with_the_batch_names_known_an_unknown_tensor_fails_before_training_with_a_suggestion():
    models = {"encoder": nn.Linear(4, 6), "head": nn.Linear(6, 3)}
    with pytest.raises(ValueError) as caught:
        Graph(
            models=models, nodes=[Node("encoder", ("x",), ("z",)), Node("head", ("zz",))], losses=[], batch=("x", "y")
        )
    assert (
        str(caught.value)
        == "graph node 1 (head) reads tensor 'zz', which neither the batch ['x', 'y'] nor any node writes; did you mean 'z'?"
    )
    with pytest.raises(ValueError) as caught:
        Graph(
            models=models,
            nodes=[Node("encoder", ("x",), ("z",)), Node("head", ("z",))],
            losses=[LossTerm("ce", F.cross_entropy, ("y_hat", "label"))],
            batch=("x", "y"),
        )
    assert (
        str(caught.value)
        == "loss term 'ce' reads tensor 'label', which neither the batch ['x', 'y'] nor any node writes"
    )


def test_a_node_overwriting_a_batch_tensor_fails():
    with pytest.raises(ValueError) as caught:
        Graph(models={"m": nn.Linear(4, 4)}, nodes=[Node("m", ("x",), ("y",))], losses=[], batch=("x", "y"))
    assert str(caught.value) == "graph node 0 (m) writes tensor 'y', which the batch already provides"


def test_a_model_in_no_node_fails_naming_it():
    models = {"encoder": nn.Linear(4, 6), "head": nn.Linear(6, 3), "spare": nn.Linear(2, 2)}
    with pytest.raises(ValueError) as caught:
        Graph(models=models, nodes=[Node("encoder", ("x",), ("z",)), Node("head", ("z",))], losses=[])
    assert str(caught.value) == "model(s) ['spare'] are in no graph node: add a node for each, or remove them"


# -- the one-node case ---------------------------------------------------------


def test_single_builds_the_one_node_graph_of_the_plain_config():
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    graph = Graph.single(model, F.cross_entropy, optimizer)

    assert graph.models == {"model": model}
    assert graph.nodes == [Node("model", ("x",), ("y_hat",))]
    assert graph.losses == [LossTerm("loss", F.cross_entropy, ("y_hat", "y"), 1.0)]
    assert list(graph.optimizers) == ["optimizer"]
    assert graph.optimizers["optimizer"].optimizer is optimizer and graph.optimizers["optimizer"].models == ["model"]

    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    tensors = default_step(graph, {"x": x, "y": y})
    assert torch.equal(tensors["y_hat"], model(x))
    assert torch.equal(tensors["loss"], F.cross_entropy(model(x), y))


def test_single_without_loss_or_optimizer_only_forwards():
    model = nn.Linear(4, 3)
    graph = Graph.single(model, None, None)
    assert graph.losses == [] and graph.optimizers == {}
    x = torch.randn(2, 4)
    tensors = default_step(graph, {"x": x})
    assert sorted(tensors) == ["x", "y_hat"]
    assert torch.equal(tensors["y_hat"], model(x))


def test_the_trainer_builds_the_optimizer_from_a_callable_over_the_models_parameters():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    trainer = Trainer(
        model=model,
        loss=F.cross_entropy,
        optimizer=functools.partial(torch.optim.SGD, lr=0.25),
        settings={"device": "cpu"},
    )
    optimizer = trainer.graph.optimizers["optimizer"].optimizer
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.25
    assert optimizer.param_groups[0]["params"] == list(model.parameters())


# -- naming a batch's parts ----------------------------------------------------


def test_batch_parts_are_named_x_and_y_and_dict_batches_keep_their_keys():
    x, y = torch.zeros(2, 3), torch.ones(2)
    assert batch_to_tensors((x, y)).keys() == {"x", "y"} and batch_to_tensors((x, y))["y"] is y
    assert batch_to_tensors([x]) == {"x": x}
    assert batch_to_tensors(x) == {"x": x}
    assert batch_to_tensors({"image": x, "label": y}) == {"image": x, "label": y}
    with pytest.raises(ValueError, match="a batch of 3 parts needs names: return a dict from the dataset"):
        batch_to_tensors((x, y, y))
