"""The default tensor names: what a batch's parts and a model's prediction are called when nothing names them.

A tuple batch ``(input, target)`` becomes the tensors ``x`` and ``y``, a
model's output is ``y_hat``, and a loss or a metric reads ``y_hat`` and
``y``. Declared once here, in a leaf that imports nothing, so the config
layer (the general form's defaults) and the engine (graph, pipelines,
metrics) use the same names without importing each other.
"""

INPUT = "x"
TARGET = "y"
PREDICTION = "y_hat"
PREDICTION_AND_TARGET = (PREDICTION, TARGET)  # what a loss term and a metric read unless told otherwise
