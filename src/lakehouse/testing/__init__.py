"""Helpers for tests and benchmarks that call a pipeline's tasks without Airflow."""

from __future__ import annotations

from typing import Any

import jinja2


def rendered_options(pipeline, options: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """An entry's options as Airflow would render them for a run with the pipeline's default params.

    Only ``{{ params.<name> }}`` templates are filled in (what pipeline.yml files use); ``overrides`` win."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    params = dict(pipeline.params)

    def render(value: Any) -> Any:  # nested like Airflow's own rendering of templated fields
        if isinstance(value, dict):
            return {key: render(item) for key, item in value.items()}
        if isinstance(value, list):
            return [render(item) for item in value]
        if isinstance(value, str) and "{{" in value:
            return environment.from_string(value).render(params=params)
        return value

    return {**render(dict(options)), **overrides}


def dbt(project_dir, *args: str, profiles_dir=None):
    """dbt in this process on a project folder, one command at a time per folder across processes
    (lakehouse.dbt_prepare.project_lock), so parallel test workers never write its target/ at once."""
    from dbt.cli.main import dbtRunner

    from ..dbt_prepare import project_lock
    from ..settings import REPO_ROOT

    argv = [*args, "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir or REPO_ROOT / "dbt")]
    with project_lock(project_dir):
        return dbtRunner().invoke(argv)
