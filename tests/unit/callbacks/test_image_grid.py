"""ImageGrid: the PNG it writes holds the chosen tensor's images, laid out in a grid, for the epochs it was asked."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from matplotlib import pyplot as plt
from torch import nn
from torch.utils.data import TensorDataset

from expresso.callbacks import ImageGrid
from expresso.callbacks.image_grid import grid
from expresso.engine import Trainer

QUANTUM = 2 / 255  # the PNG stores 8 bits a channel: a pixel is its value to within this


def images(n: int, channels: int, seed: int) -> TensorDataset:
    """``n`` random 2x3 images with ``channels`` channels, values in [0, 1), labelled by their mean."""
    x = torch.rand(n, channels, 2, 3, generator=torch.Generator().manual_seed(seed))
    return TensorDataset(x, (x.mean(dim=(1, 2, 3)) > 0.5).long())


def fit(callback: ImageGrid, run_dir, train: TensorDataset, val: TensorDataset | None, max_epochs: int = 1) -> None:
    channels = train.tensors[0].shape[1]
    torch.manual_seed(0)
    Trainer(
        model=nn.Sequential(nn.Flatten(), nn.Linear(channels * 6, 2)),
        loss=nn.functional.cross_entropy,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        train_data=train,
        val_data=val,
        callbacks=[callback],
        settings={"max_epochs": max_epochs, "batch_size": 4},
        dataloader={"shuffle": False},
        run_dir=run_dir,
    ).fit()


def expected_picture(tensors: torch.Tensor, columns: int) -> np.ndarray:
    """The grid drawn by hand: white background, one blank pixel around each 2x3 image, row by row."""
    n, channels = tensors.shape[:2]
    rows = -(-n // columns)
    picture = np.ones((rows * 3 + 1, min(columns, n) * 4 + 1, channels))
    for index in range(n):
        top, left = 1 + (index // columns) * 3, 1 + (index % columns) * 4
        picture[top : top + 2, left : left + 3, :] = tensors[index].permute(1, 2, 0).numpy()
    return picture


@pytest.mark.parametrize("channels", [1, 3], ids=["gray", "rgb"])
def test_the_png_holds_the_first_validation_batchs_images_in_rows_of_columns(tmp_path, channels):
    val = images(8, channels, seed=1)
    grid_callback = ImageGrid(tensor="x", columns=2, max_images=3)
    fit(grid_callback, tmp_path, images(16, channels, seed=0), val)
    path = tmp_path / "images" / "x-epoch001.png"
    assert grid_callback.written == [path]
    stored = plt.imread(path)  # RGBA floats
    want = expected_picture(val.tensors[0][:3], columns=2)  # the first batch of 4, its first 3 images
    assert stored.shape == (want.shape[0], want.shape[1], 4)
    assert np.abs(stored[..., :3] - want).max() <= QUANTUM  # a gray image has R = G = B
    assert (stored[..., 3] == 1).all()


def test_without_validation_the_epochs_last_training_batch_is_drawn_every_n_epochs(tmp_path):
    train = images(16, 1, seed=0)
    grid_callback = ImageGrid(tensor="x", every_n_epochs=2, columns=4, folder=str(tmp_path / "grids"))
    fit(grid_callback, tmp_path, train, None, max_epochs=5)
    assert grid_callback.written == [tmp_path / "grids" / "x-epoch002.png", tmp_path / "grids" / "x-epoch004.png"]
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["x-epoch002.png", "x-epoch004.png"]
    assert not (tmp_path / "images").exists()
    stored = plt.imread(grid_callback.written[0])[..., 0]
    assert np.abs(stored - expected_picture(train.tensors[0][12:], columns=4)[..., 0]).max() <= QUANTUM


def test_a_tensor_the_graph_does_not_output_fails_naming_the_outputs(tmp_path):
    with pytest.raises(KeyError) as caught:
        fit(ImageGrid(), tmp_path, images(8, 1, seed=0), images(4, 1, seed=1))
    assert (
        caught.value.args[0] == "ImageGrid: no tensor 'x_fake' this epoch; the outputs are ['loss', 'x', 'y', 'y_hat']"
    )


def test_grid_clamps_values_to_0_1_and_pads_with_white():
    two = torch.tensor([[[[-0.5]]], [[[0.25]]], [[[2.0]]]])  # three 1x1 gray images
    assert torch.equal(
        grid(two, columns=2),
        torch.tensor(
            [
                [1.0, 1.0, 1.0, 1.0, 1.0],
                [1.0, 0.0, 1.0, 0.25, 1.0],
                [1.0, 1.0, 1.0, 1.0, 1.0],
                [1.0, 1.0, 1.0, 1.0, 1.0],
                [1.0, 1.0, 1.0, 1.0, 1.0],
            ]
        ),
    )


@pytest.mark.parametrize("arguments", [{"every_n_epochs": 0}, {"columns": 0}, {"max_images": 0}])
def test_counts_below_one_are_refused_showing_them(arguments):
    values = {"every_n_epochs": 1, "columns": 10, "max_images": 100, **arguments}
    with pytest.raises(ValueError) as caught:
        ImageGrid(**arguments)
    assert str(caught.value) == (
        "ImageGrid: every_n_epochs, columns and max_images must be >= 1. Received: "
        f"{values['every_n_epochs']}, {values['columns']}, {values['max_images']}"
    )


def test_without_a_folder_or_a_run_folder_it_fails_saying_it_needs_one():
    with pytest.raises(ValueError) as caught:
        fit(ImageGrid(tensor="x"), None, images(8, 1, seed=0), images(4, 1, seed=1))
    assert str(caught.value) == "ImageGrid needs `folder` or a run folder (state.run_dir)"
