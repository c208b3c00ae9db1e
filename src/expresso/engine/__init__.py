"""The engine: a graph of models trained by one loop that knows no callback by name."""

from .callback import Callback, Every
from .events import Event, SkipBatch, StopEpoch, StopTraining
from .graph import Graph, LossTerm, Node, OptimizerSpec
from .state import State, Stop
from .trainer import Trainer

__all__ = [
    "Callback",
    "Event",
    "Every",
    "Graph",
    "LossTerm",
    "Node",
    "OptimizerSpec",
    "SkipBatch",
    "State",
    "Stop",
    "StopEpoch",
    "StopTraining",
    "Trainer",
]
