"""The real-job case: a small ResNet on synthetic 3x32x32 images for about a minute of training.

On digits an epoch takes milliseconds, so a framework's per-step and
per-epoch costs show up as a share of the fit; a real job spends its time in
convolutions, where that share should vanish (the issue's target: within 1%
of the hand loop). The images are generated, not downloaded: each class is a
fixed random pattern (seeded) under noise, so the accuracy climbs over the
epochs and proves every framework did the same work. expresso's config names
these classes as ``benchmarks/real_job.py:SyntheticImages`` and
``benchmarks/real_job.py:SmallResNet``; the hand loop and the peers import them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

SIZES = {"train": 3072, "val": 768, "test": 768}


class SyntheticImages(Dataset):
    """``SIZES[split]`` images of shape (3, 32, 32): class pattern plus noise; labels int64, balanced."""

    supports_batch_indexing = True  # as Digits: expresso's loaders fetch a batch with one gather
    sample_names = ("x", "y")

    def __init__(self, split: str = "train", num_classes: int = 10, noise: float = 4.0, seed: int = 0):
        if split not in SIZES:
            raise ValueError(
                f"Invalid value for argument `split`. Received: split={split!r}; expected one of {tuple(SIZES)}"
            )
        patterns = torch.randn(num_classes, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
        drawn = torch.Generator().manual_seed(seed + 1 + list(SIZES).index(split))
        count = SIZES[split]
        self.y = torch.arange(count) % num_classes
        self.x = patterns[self.y] + noise * torch.randn(count, 3, 32, 32, generator=drawn)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index):
        return self.x[index], self.y[index]


class _Block(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels_out),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and channels_in == channels_out
            else nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride, bias=False), nn.BatchNorm2d(channels_out)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class SmallResNet(nn.Module):
    """A ResNet-8-like network: a stem, three stages of one residual block (16, 32, 64 channels), pooling, a linear head."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages, channels = [], widths[0]
        for index, width in enumerate(widths):
            stages.append(_Block(channels, width, 1 if index == 0 else 2))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))
