"""Dense stacks for the pieces of a model graph: encoders, decoders, heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def _activation(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    if name not in ACTIVATIONS:
        raise ValueError(f"Invalid activation {name!r}; expected one of {sorted(ACTIVATIONS)} or null")
    return ACTIVATIONS[name]()


class Dense(nn.Module):
    """Flatten, ``hidden`` Linear + activation layers, a last Linear to ``out_features`` (+ ``output_activation``).

    ``out_shape`` reshapes the output per sample, e.g. ``[1, 8, 8]`` for a
    decoder that gives back an image.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        output_activation: str | None = None,
        out_shape: Sequence[int] | None = None,
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), _activation(activation)]
            width = size
        layers += [nn.Linear(width, out_features), _activation(output_activation)]
        self.layers = nn.Sequential(*layers)
        self.out_shape = tuple(out_shape) if out_shape else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.layers(x)
        return out.view(len(out), *self.out_shape) if self.out_shape else out


class ConditionalGenerator(nn.Module):
    """Images of the requested classes: noise drawn from torch's generator, joined with the one-hot class.

    The noise comes from the global stream, which checkpoints restore, so a
    resumed GAN draws the same noise as the uninterrupted one.
    """

    def __init__(
        self,
        num_classes: int,
        noise_features: int = 16,
        hidden: Sequence[int] = (128, 128),
        out_shape: Sequence[int] = (1, 8, 8),
    ):
        super().__init__()
        self.num_classes, self.noise_features = num_classes, noise_features
        size = 1
        for dim in out_shape:
            size *= dim
        self.body = Dense(noise_features + num_classes, size, hidden, output_activation="sigmoid", out_shape=out_shape)

    def forward(self, y: Tensor) -> Tensor:
        noise = torch.randn(len(y), self.noise_features, device=y.device)
        return self.body(torch.cat([noise, nn.functional.one_hot(y, self.num_classes).to(noise.dtype)], dim=1))


class ConditionalDiscriminator(nn.Module):
    """One logit per (image, class) pair: high when the image looks like a real one of that class."""

    def __init__(self, num_classes: int, in_features: int = 64, hidden: Sequence[int] = (128,)):
        super().__init__()
        self.num_classes = num_classes
        self.body = Dense(in_features + num_classes, 1, hidden)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        joined = torch.cat([x.flatten(1), nn.functional.one_hot(y, self.num_classes).to(x.dtype)], dim=1)
        return self.body(joined).squeeze(1)
