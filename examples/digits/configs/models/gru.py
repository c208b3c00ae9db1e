"""A GRU reading the 8 image rows as a sequence; a Python config defines a dict named `config`."""

config = {
    "class": "expresso.models.RowGRU",
    "input_size": 8,
    "hidden_size": 64,
    "num_layers": 1,
}
