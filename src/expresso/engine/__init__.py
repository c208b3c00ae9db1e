"""The engine: a graph of models trained by one loop that knows no callback by name.

``Trainer`` here runs exactly the callbacks it is given; ``expresso.Trainer``
adds the defaults every run gets (progress, history, checkpoints).
"""

from .callback import Callback, Every
from .events import Event, Rollback, SkipBatch, StopEpoch, StopTraining
from .graph import Graph, LossTerm, Node, OptimizerSpec
from .pipeline import Pipeline
from .stages import Stage, Until
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
    "Pipeline",
    "Rollback",
    "SkipBatch",
    "Stage",
    "State",
    "Stop",
    "StopEpoch",
    "StopTraining",
    "Trainer",
    "Until",
]
