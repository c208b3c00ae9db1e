"""The project's models: plain ``torch.nn.Module`` classes, named in configs/models/ by their dotted path."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class MLP(nn.Module):
    """Flatten the 8x8 image, ``hidden`` layers of Linear + ReLU (+ Dropout), then one logit per class.

    ``num_classes`` comes from the task config (configs/tasks/digits.yaml) by injection.
    """

    def __init__(self, num_classes: int, in_features: int = 64, hidden: Sequence[int] = (128,), dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
