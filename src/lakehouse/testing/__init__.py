"""Helpers for tests and benchmarks that call a pipeline's tasks without Airflow."""

from __future__ import annotations

from typing import Any

import jinja2


def rendered_options(pipeline, options: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """An entry's options as Airflow would render them for a run with the pipeline's default params.

    Only ``{{ params.<name> }}`` templates are filled in (what pipeline.yml files use); ``overrides`` win."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    params = dict(pipeline.params)
    rendered = {key: environment.from_string(value).render(params=params) if isinstance(value, str) and "{{" in value
                else value for key, value in options.items()}  # fmt: skip
    return {**rendered, **overrides}


def dbt(project_dir, *args: str, profiles_dir=None):
    """dbt in this process on a project folder, one command at a time per folder across processes
    (lakehouse.dbt_prepare.project_lock), so parallel test workers never write its target/ at once."""
    from dbt.cli.main import dbtRunner

    from ..dbt_prepare import project_lock
    from ..settings import REPO_ROOT

    argv = [*args, "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir or REPO_ROOT / "dbt")]
    with project_lock(project_dir):
        return dbtRunner().invoke(argv)
