"""The data-bound case: does expresso's default loader keep a slow dataset from starving the model?

Each sample sleeps ~1 ms (``slow_data.py``), so loading, not arithmetic,
sets the pace. The hand loop runs with ``num_workers=0`` and with
``num_workers=2`` (the plain idiom: workers restart every epoch); expresso
runs with its defaults (whatever the ``dataloader`` section defaults to;
the report prints them) and with ``dataloader.num_workers=2``. Nothing here
asserts a target: the numbers are reported as measured.
"""

from __future__ import annotations

from .training_cases import Variant

VARIANTS = [
    Variant("hand loop, num_workers=0", "hand", 0),
    Variant("hand loop, num_workers=2", "hand", 2),
    Variant("expresso API, defaults", "expresso-api"),
    Variant("expresso API, num_workers=2", "expresso-api", 2),
]


def expresso_defaults() -> dict:
    """expresso's default ``dataloader`` settings, read from its schema (a light import: no torch)."""
    import dataclasses

    from expresso.config.schema import DataLoaderConfig

    return dataclasses.asdict(DataLoaderConfig())
