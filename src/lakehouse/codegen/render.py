"""The text of the generated files: a dbt sources file, and a model with its YAML per table.

Text is written out by hand (not dumped by a YAML library) so it reads like the house's own files
and is byte-for-byte the same on every run for the same source: a test or CI can regenerate and diff.
Bodies only; lakehouse.codegen.files puts the header on.
"""

from __future__ import annotations

import json
import re

from .plan import RESERVED, SourcePlan, StagedColumn, StagedTable

# A daily load's threshold, as a warning only: the cursor column says when the SOURCE last changed a
# row, and a quiet source is news to look at, not a reason to stop the models (an error_after would
# fail the freshness task and skip everything downstream). Add error_after by hand where it is one.
FRESHNESS = ("warn_after: {count: 26, period: hour}",)
_WITH_TIME_ZONE = ("timestamp with time zone", "timestamptz", "timestamptz_ns")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ .,;()/'+-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def scalar(value: str) -> str:
    """A YAML scalar: plain when it reads as the same string, else double-quoted (JSON is valid YAML)."""
    if _PLAIN.fullmatch(value) and not value.endswith(" ") and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value, ensure_ascii=False)


def column_expression(column: StagedColumn) -> str:
    """The source column as SQL: bare, or quoted through the adapter (DuckDB "x", Spark `x`)."""
    return f"{{{{ adapter.quote('{column.source.name}') }}}}" if column.quoted else column.source.name


def _alias(name: str) -> str:
    return f"{{{{ adapter.quote('{name}') }}}}" if name in RESERVED else name


def model_sql(plan: SourcePlan, table: StagedTable) -> str:
    lines = []
    for index, column in enumerate(table.columns):
        expression = column_expression(column)
        kind = column.source.portable_type
        # Nested types (struct, list, map) have no portable cast: passed through as they are.
        line = f"cast({expression} as {kind}) as {_alias(column.name)}" if kind else f"{expression} as {_alias(column.name)}"
        line += "," if index < len(table.columns) - 1 else ""
        lines.append("        " + line)
    select_list = "\n".join(lines)
    note = ""
    if any(column.source.source_type in _WITH_TIME_ZONE for column in table.columns):
        note = "    -- A timestamp with time zone in the source becomes timestamp: the same UTC instant on DuckDB and Spark.\n"
    return (f"with source as (\n    select * from {{{{ source('{plan.source_name}', '{table.name}') }}}}\n),\n\n"
            f"renamed as (\n{note}    select\n{select_list}\n    from source\n)\n\nselect * from renamed\n")


def model_yaml(plan: SourcePlan, table: StagedTable) -> str:
    key = table.primary_key
    where = f"{plan.namespace}.{table.identifier}"
    description = table.source.description or f"{where}, renamed and cast."
    lines = ["version: 2", "", "models:", f"  - name: {table.model}", f"    description: {scalar(description)}"]
    if len(key) > 1:
        lines += ["    data_tests:", "      - lakehouse.unique_combination_of_columns:", "          arguments:",
                  f"            combination_of_columns: [{', '.join(key)}]"]
    lines.append("    columns:")
    for column in table.columns:
        lines.append(f"      - name: {column.name}")
        if column.name in RESERVED:
            lines.append("        quote: true")
        if column.source.description:
            lines.append(f"        description: {scalar(column.source.description)}")
        if column.name in key:
            lines.append("        data_tests: [not_null, unique]" if len(key) == 1 else "        data_tests: [not_null]")
    return "\n".join(lines) + "\n"


def sources_yaml(plan: SourcePlan) -> str:
    lines = ["version: 2", "", "sources:", f"  - name: {plan.source_name}", f"    description: {scalar(plan.description)}",
             f"    schema: {plan.namespace}", "    tables:"]
    for table in plan.tables:
        lines.append(f"      - name: {table.name}")
        if table.identifier != table.name:
            lines.append(f"        identifier: {table.identifier}")
        if table.source.description:
            lines.append(f"        description: {scalar(table.source.description)}")
        if table.source.cursor_column:
            lines += ["        config:", f"          loaded_at_field: {scalar(table.source.cursor_column)}",
                      "          freshness:", *(f"            {limit}" for limit in FRESHNESS)]
        lines.append("        columns:")
        for column in table.source.columns:
            lines += [f"          - name: {scalar(column.name)}", f"            data_type: {scalar(column.source_type)}"]
            if column.description:
                lines.append(f"            description: {scalar(column.description)}")
    return "\n".join(lines) + "\n"
