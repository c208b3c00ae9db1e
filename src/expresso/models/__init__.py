"""Built-in models: small, real building blocks for the examples and for quick baselines."""

from .cnn import SmallCNN
from .gru import RowGRU
from .mlp import MLP

__all__ = ["MLP", "RowGRU", "SmallCNN"]
