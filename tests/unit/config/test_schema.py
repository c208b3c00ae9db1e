"""The root keys' docs (what the docs' config reference is generated from) cover exactly the keys a config may hold."""

from __future__ import annotations

from expresso.config.schema import ROOT_DOCS, ROOT_KEYS


def test_every_root_key_has_one_line_of_doc_and_no_other_key_has_one():
    assert sorted(ROOT_DOCS) == sorted(ROOT_KEYS)
    assert all(doc.strip() and "\n" not in doc for doc in ROOT_DOCS.values())
