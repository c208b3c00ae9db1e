"""Image grids: what a generator draws, saved as a PNG after every N epochs.

Numbers say little about a GAN; a grid of its samples says whether it
learns. ``ImageGrid`` keeps one graph tensor (``x_fake``) from the first
validation batch of an epoch (or, without validation, the epoch's last
training batch) and writes ``images/<tensor>-epoch<E>.png`` into the run
folder. It reads the tensor once per epoch, so it costs nothing per step.
Each file goes to every logger as the image ``images/<tensor>`` at the
epoch's last step (``state.add_image``), with that epoch's metrics.
matplotlib draws the file (``pip install torch-expresso[plots]``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..engine.callback import Callback, Every
from ..engine.events import Event
from ..engine.state import State


class ImageGrid(Callback):
    """Saves a grid of a graph tensor's images as a PNG every N epochs, to see what a generator draws.

    The images are the first validation batch's (without validation, the
    epoch's last training batch's), values clamped to [0, 1], one blank
    pixel between them; the file is ``<tensor>-epoch<E>.png`` (E counted
    from 1, zero-padded to three digits), and ``written`` lists the files in order.

    Args:
        tensor: the name of the graph tensor to draw, (N, C, H, W) or
            (N, H, W) with C 1 (gray) or 3 (RGB).
        every_n_epochs: draw after every N-th epoch (>= 1).
        columns: images per row of the grid (>= 1).
        max_images: draw at most this many of the batch's first images (>= 1).
        folder: where the files go (None: the run folder's ``images/``).
    """

    rank_zero_only = True  # it writes: rank 0 alone runs it (engine/distributed.py)

    order = 60
    phases = ("fit",)

    def __init__(
        self,
        tensor: str = "x_fake",
        every_n_epochs: int = 1,
        columns: int = 10,
        max_images: int = 100,
        folder: str | None = None,
    ):
        if every_n_epochs < 1 or columns < 1 or max_images < 1:
            raise ValueError(
                f"ImageGrid: every_n_epochs, columns and max_images must be >= 1. Received: {every_n_epochs}, {columns}, {max_images}"
            )
        self.tensor, self.every_n_epochs, self.columns, self.max_images = tensor, every_n_epochs, columns, max_images
        self.folder = Path(folder) if folder else None
        self._images: torch.Tensor | None = None
        self.written: list[Path] = []

    def listens(self, event: Event) -> bool | Every:
        return Every(epochs=self.every_n_epochs) if event is Event.EPOCH_END else True

    def on_validation_start(self, state: State) -> None:
        self._images = None

    def on_eval_batch_end(self, state: State) -> None:
        if self._images is None and self.tensor in state.outputs:
            self._images = state.outputs[self.tensor].detach()[: self.max_images].float().cpu()

    def on_epoch_end(self, state: State) -> None:
        images = self._images
        if images is None and self.tensor in state.outputs:
            images = state.outputs[self.tensor].detach()[: self.max_images].float().cpu()
        if images is None:
            raise KeyError(f"ImageGrid: no tensor {self.tensor!r} this epoch; the outputs are {sorted(state.outputs)}")
        folder = self.folder
        if folder is None:
            if state.run_dir is None:
                raise ValueError("ImageGrid needs `folder` or a run folder (state.run_dir)")
            folder = Path(state.run_dir) / "images"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.tensor}-epoch{state.epoch + 1:03d}.png"
        save_grid(images, path, self.columns)
        self.written.append(path)
        state.add_image(f"images/{self.tensor}", path)
        self._images = None


def grid(images: torch.Tensor, columns: int, pad: int = 1) -> torch.Tensor:
    """(N, C, H, W) or (N, H, W) images -> one (H', W'[, C]) array, ``columns`` wide, separated by ``pad`` blank pixels."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    n, channels, height, width = images.shape
    rows = -(-n // columns)
    cols = min(columns, n)
    out = torch.ones(channels, rows * (height + pad) + pad, cols * (width + pad) + pad)
    for index, image in enumerate(images.clamp(0, 1)):
        r, c = divmod(index, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        out[:, top : top + height, left : left + width] = image
    return out[0] if channels == 1 else out.permute(1, 2, 0)


def save_grid(images: torch.Tensor, path: Path, columns: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    picture = grid(images, columns).numpy()
    plt.imsave(path, picture, cmap="gray" if picture.ndim == 2 else None, vmin=0.0, vmax=1.0)
