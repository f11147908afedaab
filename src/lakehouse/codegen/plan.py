"""From source names to dbt names: what each table and column is called in the staging layer.

Source names reach SQL, YAML and file names, so each one is checked here, once: a column may be
spelled any way the source allows as long as it becomes a safe snake_case identifier
(``CustomerID`` -> ``customer_id``, ``first name`` -> ``first_name``); anything else is refused with
its name, instead of being pasted into SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..identifiers import InvalidIdentifier, validate_identifier
from .introspect import Column, Table

# What a source name may hold to be spelled in SQL at all: quoted in a Jinja string, so no quotes,
# backslashes or braces; spaces and dashes become underscores in the staged name.
_SOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ \-]{0,127}$")
# Words a bare column name cannot be on DuckDB or Spark SQL: quoted where they appear.
_RESERVED_WORDS = """
all and any array as asc between both by case cast check collate column constraint create cross current_date
current_time current_timestamp current_user default desc distinct do else end except false fetch for foreign
from full grant group having in inner intersect interval into is join lateral leading left like limit natural
not null offset on only or order outer overlaps primary references right select session_user some table then
to trailing true union unique user using when where window with
"""
RESERVED = frozenset(_RESERVED_WORDS.split())


class CodegenError(ValueError):
    """The source cannot be staged as it is; the message names what to change."""


def snake_case(name: str) -> str:
    """``CustomerID`` -> ``customer_id``, ``firstName`` -> ``first_name``, ``unit-price`` -> ``unit_price``."""
    text = re.sub(r"[\s\-]+", "_", name.strip())
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    return re.sub(r"_{2,}", "_", text).lower()


def staged_name(name: str, what: str) -> str:
    """The snake_case identifier of a source name, or a CodegenError naming it."""
    if not isinstance(name, str) or not _SOURCE_NAME.match(name):
        raise CodegenError(f"{what} {name!r} cannot be staged: a source name may hold letters, digits, underscores, "
                           f"spaces and dashes only; rename it in the source or leave it out (--tables)")
    try:
        return validate_identifier(snake_case(name), what)
    except InvalidIdentifier as error:
        raise CodegenError(f"{what} {name!r} cannot be staged: {error}") from None


@dataclass(frozen=True)
class StagedColumn:
    source: Column
    name: str  # snake_case, in the model and the YAML

    @property
    def quoted(self) -> bool:
        """The source's spelling needs quotes in SQL (not plain lowercase, or a reserved word)."""
        return self.source.name != self.source.name.lower() or not _plain(self.source.name)


@dataclass(frozen=True)
class StagedTable:
    source: Table
    name: str  # the table's name in the dbt source (source('x', name))
    identifier: str  # the Iceberg table it reads
    model: str  # the staging model's name
    columns: tuple[StagedColumn, ...]

    @property
    def primary_key(self) -> tuple[str, ...]:
        by_source = {c.source.name: c.name for c in self.columns}
        return tuple(by_source[k] for k in self.source.primary_key if k in by_source)


@dataclass(frozen=True)
class SourcePlan:
    """The whole staging layer of one source: its dbt source and one model per table."""

    origin: str  # what the files say they were generated from; stable (no DSN, no port)
    source_name: str
    namespace: str  # the Iceberg namespace the tables are read from (the dbt source's schema)
    description: str
    tables: tuple[StagedTable, ...]


def _plain(name: str) -> bool:
    return re.fullmatch(r"[a-z_][a-z0-9_]*", name) is not None and name not in RESERVED


def stage_table(table: Table, *, source_name: str, identifier: str, name: str, where: str) -> StagedTable:
    from ..ingest import LINEAGE_COLUMNS

    columns, seen = [], {}
    for column in table.columns:
        if column.name in LINEAGE_COLUMNS:
            continue  # the platform's bookkeeping of a landed row, not the source's data: not staged
        staged = staged_name(column.name, f"column of {where}")
        if staged in seen:
            raise CodegenError(f"{where}: columns {seen[staged]!r} and {column.name!r} both become {staged!r}; "
                               f"rename one in the source")
        seen[staged] = column.name
        columns.append(StagedColumn(column, staged))
    return StagedTable(table, name, validate_identifier(identifier, f"Iceberg table of {where}"),
                       validate_identifier(f"stg_{source_name}_{name}", "model name"), tuple(columns))


def plan_source(tables: list[Table], *, origin: str, source_name: str, namespace: str, description: str,
                identifier_prefix: str = "", strip_prefix: str = "", where_prefix: str = "") -> SourcePlan:
    """Each table named in dbt (``strip_prefix`` taken off) and landed as ``identifier_prefix`` + name."""
    validate_identifier(source_name, "source name")
    validate_identifier(namespace, "namespace")
    staged, names = [], {}
    for table in tables:
        where = f"table {where_prefix}{table.name}"
        name = staged_name(table.name, "table")
        if strip_prefix and name.startswith(strip_prefix) and len(name) > len(strip_prefix):
            name = name[len(strip_prefix):]
        name = staged_name(name, "table")
        if name in names:
            raise CodegenError(f"tables {names[name]!r} and {table.name!r} both become {name!r} in source {source_name!r}")
        names[name] = table.name
        # As the sql_database ingest names it: raw.<prefix><table>, the table's name as it is.
        identifier = identifier_prefix + table.name
        staged.append(stage_table(table, source_name=source_name, identifier=identifier, name=name, where=where))
    staged.sort(key=lambda t: t.name)
    return SourcePlan(origin, source_name, namespace, description, tuple(staged))
