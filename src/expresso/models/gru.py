"""A GRU that reads an image row by row, as a sequence."""

from __future__ import annotations

from torch import Tensor, nn


class RowGRU(nn.Module):
    """Treats each image row as one time step (``input_size`` pixels) and classifies the last state."""

    def __init__(
        self,
        num_classes: int,
        input_size: int = 8,
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
    ):
        super().__init__()
        self.input_size = input_size
        self.gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(x.shape[0], -1, self.input_size)
        _, state = self.gru(rows)
        last = state[-2:].transpose(0, 1).flatten(1) if self.gru.bidirectional else state[-1]
        return self.head(last)
