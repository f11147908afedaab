"""What the tests of tests/dbt share: a fresh LAKEHOUSE_HOME for a whole module, and the results of
a dbt invocation by node name (dbt itself runs through tests/quality_project.py's helpers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

CONFTEST = Path(__file__).parents[1] / "conftest.py"


def module_home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tests/conftest.py's lakehouse_home (an empty catalog and warehouse, never the repository's
    .lakehouse), for a module-scoped fixture: `yield from module_home(request, tmp_path_factory)`."""
    # conftest.py files outside a package all import as "conftest": take this one by its path.
    conftest = request.config.pluginmanager.get_plugin(str(CONFTEST))
    with pytest.MonkeyPatch.context() as patch:
        yield from conftest.lakehouse_home.__wrapped__(tmp_path_factory.mktemp("lakehouse"), patch)


def results_by_name(target: Path) -> dict[str, dict]:
    """run_results.json by node name: test.<project>.<name>.<hash>, unit_test.<project>.<model>.<name>."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1 if r["unique_id"].startswith("unit_test.") else 2]: r for r in results}
