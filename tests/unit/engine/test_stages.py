"""Stages: frozen models stay exactly as they were, stop conditions end a stage, and a resume lands mid-stage exactly."""

from __future__ import annotations

import copy

import pytest
import torch
from test_pipelines import Seen, ae_graph, two_pipelines

from expresso.callbacks import Checkpoint, EarlyStopping
from expresso.engine import Callback, Trainer
from expresso.engine.graph import GraphError
from expresso.engine.stages import Stage


def three_stages(**first) -> list[Stage]:
    """Pretrain the autoencoder; train the head on the frozen encoder; fine-tune everything on both pipelines."""
    return [
        Stage("pretrain", train=["reconstruct"], epochs=2, **first),
        Stage("probe", train=["classify"], frozen=["encoder"], epochs=2),
        Stage("finetune", train=["classify", "reconstruct"], epochs=1),
    ]


def trainer(stages, callbacks=(), run_dir=None, graph=None, **settings) -> Trainer:
    return Trainer(
        graph=graph or ae_graph(),
        pipelines=two_pipelines(),
        stages=stages,
        callbacks=callbacks,
        run_dir=run_dir,
        settings={"batch_size": 4, "device": "cpu", **settings},
        dataloader={"shuffle": True},
    )


class Snapshots(Callback):
    """Every model's state at each stage's start and end, and the modes and flags the stage left them in."""

    def __init__(self):
        self.at: dict[tuple[str, str], dict] = {}
        self.modes: dict[str, dict[str, bool]] = {}

    def _take(self, state, when):
        self.at[state.stage_name, when] = {name: copy.deepcopy(m.state_dict()) for name, m in state.models.items()}

    def on_stage_start(self, state):
        self._take(state, "start")

    def on_batch_start(self, state):
        self.modes.setdefault(state.stage_name, {name: m.training for name, m in state.models.items()})
        self.modes[state.stage_name + " grads"] = {
            name: all(p.requires_grad for p in m.parameters()) for name, m in state.models.items()
        }

    def on_stage_end(self, state):
        self._take(state, "end")


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stages_run_in_order_and_a_frozen_model_is_bit_for_bit_unchanged_while_the_others_train():
    seen, shots = Seen(), Snapshots()
    fit = trainer(three_stages(), [seen, shots])
    fit.fit()
    # 2 + 2 batches classify (8 samples), 4 reconstruct (16 samples): 2 epochs, 2 epochs, 1 interleaved epoch
    assert (
        seen.pipelines == ["reconstruct"] * 8 + ["classify"] * 4 + ["classify", "reconstruct"] * 2 + ["reconstruct"] * 2
    )
    start, end = shots.at["probe", "start"], shots.at["probe", "end"]
    assert same(start["encoder"], end["encoder"]) and same(start["decoder"], end["decoder"])
    assert not same(start["head"], end["head"])
    assert not same(shots.at["pretrain", "start"]["encoder"], shots.at["pretrain", "end"]["encoder"])
    assert not same(shots.at["finetune", "start"]["encoder"], shots.at["finetune", "end"]["encoder"])  # unfrozen again
    assert shots.modes["probe"] == {
        "encoder": False,
        "decoder": True,
        "head": True,
    }  # a frozen model stays in eval mode
    assert shots.modes["probe grads"] == {"encoder": False, "decoder": True, "head": True}
    assert shots.modes["finetune grads"] == {"encoder": True, "decoder": True, "head": True}
    assert (fit.state.epoch, fit.state.stage) == (5, 3)


def test_early_stopping_and_until_end_a_stage_and_the_next_one_starts():
    stages = three_stages(until=lambda state: state.stage_epoch == 0)  # stop after the first pretrain epoch
    stages[1].epochs = 5
    stages[1].early_stopping = EarlyStopping(
        monitor="val/classify/loss", patience=0, mode="max"
    )  # the loss falls: stops after 2 checks
    seen = Seen()
    fit = trainer(stages, [seen])
    fit.fit()
    assert seen.pipelines[:4] == ["reconstruct"] * 4  # one pretrain epoch, not two
    assert fit.state.epoch == 1 + 2 + 1


def test_a_stages_stop_condition_is_a_callback_that_hears_the_events_of_its_stage_only():
    class Watcher(Callback):
        """Any callback may be a stage's stop condition: the loop fires it, it does not call it by name."""

        def __init__(self):
            self.seen: list[tuple[str, str]] = []

        def on_fit_start(self, state):
            self.seen.append(("fit_start", state.stage_name))

        def on_stage_start(self, state):
            self.seen.append(("stage_start", state.stage_name))

        def on_epoch_end(self, state):
            self.seen.append(("epoch_end", state.stage_name))
            if state.stage_epoch == 0:
                state.request_stop(self.stop_key, "one epoch is enough")

        def on_stage_end(self, state):
            self.seen.append(("stage_end", state.stage_name))

        def on_fit_end(self, state):
            self.seen.append(("fit_end", state.stage_name))

    stages = three_stages()
    stages[1].early_stopping = watcher = Watcher()
    fit = trainer(stages, [seen := Seen()])
    fit.fit()
    assert watcher.seen == [("stage_start", "probe"), ("epoch_end", "probe")]
    assert watcher.stop_key == "stages.1.early_stopping"  # what its stop request is recorded under
    assert seen.pipelines.count("classify") == 2 + 2  # one probe epoch of two batches (not two epochs), then finetune's


def test_a_checkpoint_after_a_stopped_stage_resumes_with_the_next_stage(tmp_path):
    stages = three_stages(until=lambda state: True)
    whole = trainer(stages, [Checkpoint(monitor=None, dirpath=str(tmp_path))], max_epochs=5)

    class Keep(Callback):
        def on_stage_end(self, state):  # the epoch's checkpoint was handed to the writer after its EPOCH_END handlers
            if state.stage == 0:
                state.wait_for_checkpoints()
                (tmp_path / "last.ckpt").rename(tmp_path / "after-pretrain.ckpt")

    whole.callbacks = type(whole.callbacks)([*whole.callbacks.callbacks, Keep()])
    whole.fit()
    payload = torch.load(tmp_path / "after-pretrain.ckpt", weights_only=True)
    assert payload["loop"] == {
        "epoch": 1,
        "batch_index": 0,
        "step": 4,
        "stage": 0,
        "stage_epoch": 1,
        "stage_stopped": True,
        "stops": {"stages.0.until": "its until condition held"},
        "stop_fit": False,
    }
    seen = Seen()
    resumed = trainer(three_stages(until=lambda state: True), [seen], graph=ae_graph())
    resumed.fit(resume_from=tmp_path / "after-pretrain.ckpt")
    assert seen.pipelines[0] == "classify" and resumed.state.stage_name == "finetune"

    # Resumed with an until that no longer holds, the stopped stage trains on (pretrain: 2 epochs, 1 done).
    seen = Seen()
    resumed = trainer(three_stages(until=lambda state: False), [seen], graph=ae_graph())
    resumed.load_checkpoint(tmp_path / "after-pretrain.ckpt")
    assert (resumed.state.stage, resumed.state.stage_epoch) == (0, 1)
    resumed.fit()
    assert seen.pipelines[0] == "reconstruct" and "classify" in seen.pipelines


class SaveAt(Callback):
    """Checkpoint once, after optimizer step ``step`` (mid-epoch)."""

    order = 200

    def __init__(self, step: int, path):
        self.step, self.path = step, path

    def on_batch_end(self, state):
        if state.step == self.step:
            state.save_checkpoint(self.path)


@pytest.mark.parametrize("save_step", [3, 10, 14, 16])  # pretrain epoch 1; probe; finetune mid-interleaving (twice)
def test_a_resume_mid_stage_and_mid_interleaving_ends_bit_for_bit_like_the_uninterrupted_fit(tmp_path, save_step):
    path = tmp_path / "mid.ckpt"
    whole = trainer(three_stages(), [SaveAt(save_step, path)])
    whole.fit()
    resumed = trainer(three_stages(), [], graph=ae_graph())
    torch.manual_seed(99)
    resumed.fit(resume_from=path)
    assert resumed.state.step == whole.state.step == 8 + 4 + 6
    for name in whole.graph.models:
        assert same(whole.graph.models[name].state_dict(), resumed.graph.models[name].state_dict()), name
    assert resumed.state.metrics == whole.state.metrics


def test_a_stage_naming_an_unknown_pipeline_or_model_fails_naming_the_stage():
    with pytest.raises(GraphError) as caught:
        trainer([Stage("probe", train=["clasify"])])
    assert (
        str(caught.value) == "stage 'probe' trains pipeline 'clasify', which is not among ['classify', 'reconstruct']"
    )
    with pytest.raises(GraphError) as caught:
        trainer([Stage("probe", frozen=["enc"])])
    assert str(caught.value) == "stage 'probe' freezes model 'enc', which is not among ['decoder', 'encoder', 'head']"


def test_fitting_a_pipeline_without_loss_terms_fails_before_any_step():
    from test_pipelines import data

    from expresso.engine.pipeline import Pipeline

    fit = Trainer(
        graph=ae_graph(), pipelines=[Pipeline("look", train_data=data(8, 1), losses=[])], settings={"device": "cpu"}
    )
    with pytest.raises(GraphError) as caught:
        fit.fit()
    assert str(caught.value) == "stage 'main' trains pipeline(s) ['look'], which have no loss term to train with"
    assert fit.state.step == 0
