"""Validation and quoting of identifiers that come from configuration or data.

Table and column names reach SQL strings (DuckDB views, dbt relations); anything that is not a plain
identifier is refused with a message that names it, instead of being pasted into SQL.
"""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

# The layers every pipeline shares; table names are unique across pipelines within them.
NAMESPACES = ("raw", "staging", "marts", "audit", "quarantine")


class InvalidIdentifier(ValueError):
    pass


def validate_identifier(name: str, what: str = "identifier") -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise InvalidIdentifier(
            f"invalid {what} {name!r}: use letters, digits and underscores, starting with a letter or underscore"
        )
    return name


def quote(name: str) -> str:
    """Double-quote a validated identifier for DuckDB/ANSI SQL."""
    return '"' + validate_identifier(name) + '"'


def split_table_name(full_name: str) -> tuple[str, str]:
    """'marts.mart_positions' -> ('marts', 'mart_positions'), both validated."""
    parts = full_name.split(".")
    if len(parts) != 2:
        raise InvalidIdentifier(f"table name {full_name!r} must be '<namespace>.<table>'")
    namespace, table = parts
    return validate_identifier(namespace, "namespace"), validate_identifier(table, "table name")
