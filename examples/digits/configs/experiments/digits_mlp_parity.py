"""The digits MLP on a second task (odd or even), written as a Python dict.

The task value `num_classes: 2` reaches the model and the metric by injection;
the dataset's labels follow the task's `target`.
"""

config = {
    "extends": "digits_mlp.yaml",
    "name": "digits-mlp-parity",
    "task": "../tasks/digits_parity.yaml",
}
