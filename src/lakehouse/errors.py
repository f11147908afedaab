"""Errors a user meets when a declaration is wrong, and reading a declaration file; shared by the pipeline
loader and the kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class InvalidPipeline(ValueError):
    """A pipeline folder cannot be loaded; the message names the file and what to fix."""


def read_yaml(path: Path) -> Any:
    """A YAML file's content; a syntax error names the file, line and column."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(str(part) for part in (getattr(error, "context", None), getattr(error, "problem", None)) if part)
        raise InvalidPipeline(f"{where}: YAML syntax error: {problem or error}") from None
