"""A small convolutional network for small square images."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """3x3 conv blocks (Conv + ReLU, the last followed by 2x2 max-pooling), then a linear classifier.

    Inputs are (batch, in_channels, image_size, image_size).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32),
        image_size: int = 8,
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for size in channels:
            layers += [nn.Conv2d(width, size, kernel_size=3, padding=1), nn.ReLU()]
            width = size
        layers += [nn.MaxPool2d(2), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(width * (image_size // 2) ** 2, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
