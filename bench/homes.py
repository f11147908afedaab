"""A throw-away lakehouse for one benchmark: its own home, catalog and warehouse on local disk."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Settings that would point the catalog, the warehouse or the raw zone somewhere else than the home.
STORAGE_SETTINGS = ("LAKEHOUSE_HOME", "LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_CATALOG_NAME", "LAKEHOUSE_WAREHOUSE",
                    "LAKEHOUSE_RAW_ZONE")


@contextmanager
def throwaway_lakehouse() -> Iterator[Path]:
    """A temporary folder whose ``home/`` is LAKEHOUSE_HOME for the block; the settings are restored after."""
    from lakehouse.catalog import _catalog_for

    saved = {name: os.environ.get(name) for name in STORAGE_SETTINGS}
    with tempfile.TemporaryDirectory() as folder:
        for name in STORAGE_SETTINGS:
            os.environ.pop(name, None)
        os.environ["LAKEHOUSE_HOME"] = str(Path(folder) / "home")
        _catalog_for.cache_clear()
        try:
            yield Path(folder)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _catalog_for.cache_clear()
