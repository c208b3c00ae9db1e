"""Loss terms that torch does not ship in the shape a config wants."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F


class Adversarial(nn.Module):
    """A GAN's binary cross-entropy on logits against a constant target: ``real`` (1) or ``fake`` (0).

    One class serves the three terms of a GAN: the discriminator's on real
    images (``real``) and on generated ones (``fake``), and the generator's
    (``real``: it wants its images taken for real ones).
    """

    def __init__(self, target: str = "real"):
        super().__init__()
        if target not in ("real", "fake"):
            raise ValueError(
                f"Invalid value for argument `target`. Received: target={target!r}; expected 'real' or 'fake'"
            )
        self.value = 1.0 if target == "real" else 0.0

    def forward(self, logits: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, logits.new_full(logits.shape, self.value))
