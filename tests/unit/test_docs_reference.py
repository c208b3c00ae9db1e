"""scripts/docs_reference.py: the markers it replaces, and what it refuses (the strict docs build fails on it)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from expresso.settings import DataLoaderConfig, TrainerConfig

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "docs_reference.py"
spec = importlib.util.spec_from_file_location("docs_reference", SCRIPT)
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)


def test_a_marker_becomes_one_table_row_per_setting_with_its_type_and_default():
    page = reference.render("intro\n<!-- reference: trainer -->\nafter\n")
    rows = [line for line in page.splitlines() if line.startswith("| `trainer.")]
    assert [row.split("`")[1] for row in rows] == [f"trainer.{f.name}" for f in dataclasses.fields(TrainerConfig)]
    assert "| `trainer.max_epochs` | `int` | `10` | at least 1 | epochs to train |" in rows
    assert "| `trainer.eval_batch_size` | `int` or `null` | `null` | at least 1 |" in page
    assert "| `trainer.mode` | `min` or `max` | `min` |" in page
    assert page.startswith("intro\n") and page.endswith("\nafter\n")


def test_a_moved_setting_is_listed_where_it_was_with_where_it_went():
    page = reference.render("<!-- reference: dataloader -->")
    assert all(f"| `dataloader.{f.name}` |" in page for f in dataclasses.fields(DataLoaderConfig))
    assert "| `dataloader.eval_batch_size` | | | moved | refused here: write it as `trainer.eval_batch_size` |" in page


def test_an_unknown_marker_fails_naming_the_page_and_the_known_ones():
    with pytest.raises(ValueError, match=r"config.md: unknown reference section 'trainers'; expected one of \["):
        reference.render("<!-- reference: trainers -->", "config.md")


def test_a_root_key_without_a_doc_fails(monkeypatch):
    from expresso.config import schema

    monkeypatch.setattr(schema, "ROOT_KEYS", (*schema.ROOT_KEYS, "epochs"))  # a key the schema has no doc for
    with pytest.raises(ValueError, match=r"without a line in expresso.config.schema.ROOT_DOCS: \[.epochs.\]"):
        reference.root_keys()
