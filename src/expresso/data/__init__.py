"""Built-in datasets: small real data that ships inside installed packages (no downloads)."""

from .digits import Digits

__all__ = ["Digits"]
