"""The engine: a graph of models trained by one loop that knows no callback by name."""

from .callback import Callback
from .events import Event, SkipBatch, StopEpoch, StopTraining
from .graph import Graph, LossTerm, Node, OptimizerSpec
from .state import State
from .trainer import Trainer

__all__ = [
    "Callback",
    "Event",
    "Graph",
    "LossTerm",
    "Node",
    "OptimizerSpec",
    "SkipBatch",
    "State",
    "StopEpoch",
    "StopTraining",
    "Trainer",
]
