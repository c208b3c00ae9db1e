"""Transforms a dataset applies to its images: each takes a batch of images (N, 1, 8, 8) and returns one.

They work on whole batches because the project's datasets hand out a batch
per index list (``supports_batch_indexing``): one call per batch, not per image.
Randomness comes from torch's global generator, which expresso's checkpoints
restore, so a resumed run draws the same noise as an uninterrupted one.
"""

from __future__ import annotations

import torch


class GaussianNoise:
    """Adds noise of standard deviation ``std`` and clamps to [0, 1]: a denoising autoencoder's corrupted input."""

    def __init__(self, std: float = 0.1):
        if std < 0:
            raise ValueError(f"Invalid value for argument `std`. Received: std={std}; expected a value >= 0")
        self.std = std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (images + self.std * torch.randn_like(images)).clamp(0.0, 1.0)


class RandomShift:
    """Shifts every image of the batch by up to ``pixels`` pixels in each direction (zeros fill in): cheap augmentation."""

    def __init__(self, pixels: int = 1):
        if pixels < 0:
            raise ValueError(
                f"Invalid value for argument `pixels`. Received: pixels={pixels}; expected an integer >= 0"
            )
        self.pixels = pixels

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.pixels == 0:
            return images
        dy, dx = (int(v) for v in torch.randint(-self.pixels, self.pixels + 1, (2,)))
        shifted = torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
        height, width = images.shape[-2:]
        if dy > 0:
            shifted[..., :dy, :] = 0
        elif dy < 0:
            shifted[..., height + dy :, :] = 0
        if dx > 0:
            shifted[..., :, :dx] = 0
        elif dx < 0:
            shifted[..., :, width + dx :] = 0
        return shifted
