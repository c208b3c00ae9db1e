"""The docs site builds in strict mode (any warning fails it), and the reference sections were generated into it.

mkdocs.yml sets the strictness: a warning (a broken link or anchor, a page
left out of the nav, a docstring mkdocstrings cannot read, a reference marker
scripts/docs_reference.py does not know) fails the build. The pages checked
below carry tables generated from the code; each must list every setting and
event the code declares, so a marker that rendered nothing cannot pass.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
import subprocess
import sys
from pathlib import Path

from expresso.config.schema import ROOT_KEYS, SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_build_strict_with_every_setting_event_and_callback_generated(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr

    def text(page: str) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", (site / page / "index.html").read_text()))

    config = text("config")
    for section, cls in SETTINGS.items():
        for field in dataclasses.fields(cls):
            assert f"{section}.{field.name}" in config
            assert field.metadata["doc"] in config
    assert all(f"{key}" in config for key in ROOT_KEYS)
    from expresso.engine import Event

    callbacks = text("callbacks")
    assert all(f"on_{event.value}" in callbacks for event in Event)
    import expresso.callbacks

    assert all(name in callbacks for name in expresso.callbacks.__all__ if name[0].isupper())
    api = (site / "api" / "index.html").read_text()
    assert all(f'id="expresso.callbacks.{name}"' in api for name in ("Checkpoint", "EarlyStopping", "NaNGuard"))
    assert 'id="expresso.engine.Trainer.fit"' in api  # the members, from the docstrings

    # the README's links into the docs: each page is built, each anchor is on it
    links = re.findall(r"\]\(docs/([\w-]+)\.md(?:#([\w-]+))?\)", (ROOT / "README.md").read_text())
    assert {page for page, _ in links} >= {"index", "config", "callbacks", "trackers"}
    for page, anchor in links:
        built = (site / page / "index.html").read_text() if page != "index" else (site / "index.html").read_text()
        assert not anchor or f'id="{anchor}"' in built, f"README links to docs/{page}.md#{anchor}"
