"""Built-in models: small, real building blocks for the examples and for quick baselines."""

from .cnn import SmallCNN
from .dense import ConditionalDiscriminator, ConditionalGenerator, Dense
from .gru import RowGRU
from .mlp import MLP

__all__ = ["MLP", "ConditionalDiscriminator", "ConditionalGenerator", "Dense", "RowGRU", "SmallCNN"]
