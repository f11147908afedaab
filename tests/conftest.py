"""Shared fixtures: every test that touches the lakehouse gets its own, empty one."""

from __future__ import annotations

import pytest

from lakehouse.catalog import _catalog_for


@pytest.fixture
def lakehouse_home(tmp_path, monkeypatch):
    """A fresh LAKEHOUSE_HOME (catalog + warehouse) under tmp_path, never the repository's .lakehouse."""
    home = tmp_path / "lakehouse"
    monkeypatch.setenv("LAKEHOUSE_HOME", str(home))
    # Settings that would point the catalog elsewhere than the new home.
    for name in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_CATALOG_NAME"):
        monkeypatch.delenv(name, raising=False)
    # Catalogs are cached per (name, uri, warehouse): no test keeps using another test's catalog.
    _catalog_for.cache_clear()
    yield home
    _catalog_for.cache_clear()
