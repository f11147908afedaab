"""Column lineage of a dbt model from its compiled SQL, by DuckDB's own parser and the Iceberg schemas.

openlineage-sql (which Cosmos's lineage uses) cannot expand ``select *`` without the tables' schemas, and
dbt models are mostly ``select *`` over CTEs, so it finds little: in the liquidity project, a few columns
of two marts. Here DuckDB parses the compiled SQL (``json_serialize_sql``: the parse tree, no binding, no
data read) and each output column is followed through CTEs, subqueries, joins, ``*`` (with EXCLUDE,
REPLACE, RENAME), UNION and expressions down to the columns of the tables read, whose columns are known
from the input datasets' Iceberg schema facets. Each source column is marked as OpenLineage transformation
DIRECT/IDENTITY (copied), DIRECT/TRANSFORMATION (computed from it) or DIRECT/AGGREGATION (aggregated or
windowed).

Not covered (the column then has no lineage, or only what openlineage-sql found): columns referenced only
in WHERE, JOIN ... ON, GROUP BY or ORDER BY (indirect lineage), table functions (their columns have no
source), ``COLUMNS(...)`` expressions, and SQL DuckDB cannot parse (a Jinja leftover, another dialect).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from openlineage.client.facet_v2 import column_lineage_dataset

from . import naming

log = logging.getLogger(__name__)

Source = tuple[str, str, str]  # (table 'ns.table', column, transformation subtype)
_RANK = {"IDENTITY": 0, "TRANSFORMATION": 1, "AGGREGATION": 2}
_AGGREGATES = {"sum", "count", "count_star", "avg", "mean", "min", "max", "median", "mode", "stddev", "stddev_pop",
               "stddev_samp", "variance", "var_pop", "var_samp", "string_agg", "list", "array_agg", "first", "last",
               "any_value", "arg_min", "arg_max", "min_by", "max_by", "bool_and", "bool_or", "product", "quantile",
               "quantile_cont", "quantile_disc", "approx_count_distinct", "histogram", "bit_and", "bit_or"}


class Unsupported(Exception):
    pass


@dataclass
class Relation:
    """A FROM item: its alias and its columns, in order, each with the source columns it comes from.
    ``opaque``: a table whose columns are unknown; a reference to it names its column directly."""

    alias: str
    columns: list[tuple[str, set[Source]]] = field(default_factory=list)
    opaque: str | None = None

    def column(self, name: str) -> set[Source] | None:
        lowered = name.lower()
        for column, sources in self.columns:
            if column.lower() == lowered:
                return sources
        if self.opaque:
            return {(self.opaque, name, "IDENTITY")}
        return None


def _weaker(sources: set[Source], subtype: str) -> set[Source]:
    """The sources as seen through an expression of kind ``subtype`` (IDENTITY < TRANSFORMATION < AGGREGATION)."""
    return {(t, c, subtype if _RANK[subtype] > _RANK[s] else s) for t, c, s in sources}


class _Resolver:
    def __init__(self, schemas: dict[str, list[str]]) -> None:
        self.schemas = {k.lower(): v for k, v in schemas.items()}

    # --- FROM ----------------------------------------------------------------------------------

    def table(self, ref: dict, ctes: dict[str, Relation]) -> Relation:
        name, schema = ref.get("table_name") or "", ref.get("schema_name") or ""
        alias = ref.get("alias") or name
        if not schema and name.lower() in ctes:
            relation = Relation(alias, list(ctes[name.lower()].columns), ctes[name.lower()].opaque)
        else:
            full = f"{schema}.{name}" if schema else name
            columns = self.schemas.get(full.lower())
            if columns is None:
                relation = Relation(alias, opaque=full)
            else:
                relation = Relation(alias, [(c, {(full, c, "IDENTITY")}) for c in columns])
        return self._renamed(relation, ref.get("column_name_alias") or [])

    @staticmethod
    def _renamed(relation: Relation, aliases: list[str]) -> Relation:
        if aliases:
            relation.columns = [(aliases[i] if i < len(aliases) else c, s) for i, (c, s) in enumerate(relation.columns)]
        return relation

    def from_item(self, item: dict | None, ctes: dict[str, Relation]) -> list[Relation]:
        if not item:
            return []
        kind = item.get("type")
        if kind == "BASE_TABLE":
            return [self.table(item, ctes)]
        if kind == "JOIN":
            return self.from_item(item.get("left"), ctes) + self.from_item(item.get("right"), ctes)
        if kind == "SUBQUERY":
            columns = self.statement(item["subquery"]["node"], ctes)
            return [self._renamed(Relation(item.get("alias") or "", columns), item.get("column_name_alias") or [])]
        if kind == "EMPTY":
            return []
        if kind == "TABLE_FUNCTION":
            aliases = item.get("column_name_alias") or []
            return [Relation(item.get("alias") or "", [(a, set()) for a in aliases])]
        raise Unsupported(f"FROM item {kind}")

    # --- expressions ---------------------------------------------------------------------------

    def column_ref(self, names: list[str], scope: list[Relation], earlier: dict[str, set[Source]]) -> set[Source]:
        if len(names) >= 2:
            qualifier, column = names[-2], names[-1]
            for relation in scope:
                if relation.alias.lower() == qualifier.lower():
                    return relation.column(column) or set()
            # schema.table.column, or a struct field (table.struct_column.field): try the column itself
            names = names[-1:]
        column = names[0]
        for relation in scope:
            found = relation.column(column) if not relation.opaque else None
            if found is not None:
                return found
        opaque = [r for r in scope if r.opaque]
        if len(opaque) == 1 and len(scope) == 1:
            return opaque[0].column(column) or set()
        return earlier.get(column.lower(), set())  # DuckDB lets a select item use an earlier item's alias

    def expression(self, node: Any, scope: list[Relation], earlier: dict[str, set[Source]], ctes: dict) -> set[Source]:
        if isinstance(node, list):
            return set().union(*(self.expression(n, scope, earlier, ctes) for n in node)) if node else set()
        if not isinstance(node, dict):
            return set()
        cls = node.get("class")
        if cls == "COLUMN_REF":
            return set(self.column_ref(node.get("column_names") or [], scope, earlier))
        if cls == "SUBQUERY":
            columns = self.statement(node["subquery"]["node"], ctes)
            return _weaker(set().union(*(s for _, s in columns)) if columns else set(), "TRANSFORMATION")
        if cls == "LAMBDA":
            return self.expression(node.get("expr"), scope, earlier, ctes)
        found: set[Source] = set()
        for key, value in node.items():
            if key in ("query_location", "alias", "class", "type", "cast_type", "value"):
                continue
            if isinstance(value, (dict, list)):
                found |= self.expression(value, scope, earlier, ctes)
        if cls == "WINDOW" or (cls == "FUNCTION" and str(node.get("function_name", "")).lower() in _AGGREGATES) \
                or cls == "AGGREGATE":
            return _weaker(found, "AGGREGATION")
        if cls in ("CAST",) and isinstance(node.get("child"), dict) and node["child"].get("class") == "COLUMN_REF":
            return _weaker(found, "TRANSFORMATION")
        return _weaker(found, "TRANSFORMATION")

    @staticmethod
    def _name(node: dict) -> str | None:
        if node.get("alias"):
            return node["alias"]
        if node.get("class") == "COLUMN_REF":
            return (node.get("column_names") or [None])[-1]
        if node.get("class") == "CAST" and isinstance(node.get("child"), dict):
            return _Resolver._name(node["child"])  # DuckDB names cast(x as t) "CAST(x AS T)"; dbt models alias
        return None

    # --- queries -------------------------------------------------------------------------------

    def ctes(self, node: dict, outer: dict[str, Relation]) -> dict[str, Relation]:
        scope = dict(outer)
        for entry in ((node.get("cte_map") or {}).get("map") or []):
            query = entry["value"]["query"]["node"]
            columns = self.statement(query, scope)
            aliases = entry["value"].get("aliases") or []
            scope[str(entry["key"]).lower()] = self._renamed(Relation(entry["key"], columns), aliases)
        return scope

    def statement(self, node: dict, outer: dict[str, Relation]) -> list[tuple[str, set[Source]]]:
        ctes = self.ctes(node, outer)
        kind = node.get("type")
        if kind == "SET_OPERATION_NODE":
            children = node.get("children") or [node.get("left"), node.get("right")]
            results = [self.statement(child, ctes) for child in children if child]
            if not results:
                return []
            first = results[0]
            return [(name, set().union(*(r[i][1] for r in results if i < len(r)))) for i, (name, _) in enumerate(first)]
        if kind == "CTE_NODE":  # older serializations: a CTE as a node around the query
            return self.statement(node["child"], ctes)
        if kind != "SELECT_NODE":
            raise Unsupported(f"query node {kind}")
        scope = self.from_item(node.get("from_table"), ctes)
        output: list[tuple[str, set[Source]]] = []
        earlier: dict[str, set[Source]] = {}
        for item in node.get("select_list") or []:
            if item.get("class") == "STAR":
                if item.get("columns") or item.get("expr"):
                    raise Unsupported("COLUMNS(...)")
                output.extend(self.star(item, scope, earlier, ctes))
                continue
            name = self._name(item)
            sources = self.expression(item, scope, earlier, ctes)
            if item.get("class") == "COLUMN_REF":
                sources = _weaker(sources, "IDENTITY")
            output.append((name or f"#{len(output)}", sources))
            if name:
                earlier[name.lower()] = sources
        return output

    def star(self, item: dict, scope: list[Relation], earlier: dict, ctes: dict) -> list[tuple[str, set[Source]]]:
        relations = [r for r in scope if not item.get("relation_name") or r.alias.lower() == item["relation_name"].lower()]
        if any(r.opaque for r in relations):
            raise Unsupported("* over a table of unknown columns")
        excluded = {str(e if isinstance(e, str) else (e or {}).get("column_names", [""])[-1]).lower()
                    for e in (item.get("exclude_list") or []) + (item.get("qualified_exclude_list") or [])}
        replaced = {str(r["key"]).lower(): r["value"] for r in item.get("replace_list") or []}
        renamed = {}
        for r in item.get("rename_list") or []:
            key = r.get("key")
            key = key if isinstance(key, str) else (key or {}).get("column_names", [""])[-1]
            renamed[str(key).lower()] = r.get("value")
        columns = []
        for relation in relations:
            for name, sources in relation.columns:
                if name.lower() in excluded:
                    continue
                if name.lower() in replaced:
                    sources = self.expression(replaced[name.lower()], scope, earlier, ctes)
                columns.append((renamed.get(name.lower(), name), sources))
        return columns


_parser: Any = None
_parser_lock = threading.Lock()


def _parse(sql: str) -> dict:
    """DuckDB's parse tree of ``sql``, from one in-memory connection kept for the process (connecting costs
    more than parsing); it never sees a table, only text."""
    global _parser
    with _parser_lock:
        if _parser is None:
            import duckdb

            _parser = duckdb.connect()
        text = _parser.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()[0]
    parsed = json.loads(text)
    if parsed.get("error"):
        raise Unsupported(parsed.get("error_message") or "DuckDB could not parse the SQL")
    statements = parsed.get("statements") or []
    if len(statements) != 1:
        raise Unsupported(f"{len(statements)} statements")
    return statements[0]["node"]


def column_sources(sql: str, schemas: dict[str, list[str]]) -> dict[str, set[Source]]:
    """{output column: {(table, column, subtype)}} of a SELECT, tables named 'namespace.table'
    (DuckDB's in-memory catalog prefix ``memory.`` dropped). Raises Unsupported for SQL it cannot follow."""
    node = _parse(sql)
    columns = _Resolver(schemas).statement(node, {})
    result: dict[str, set[Source]] = {}
    for name, sources in columns:
        cleaned = {(t.split(".", 1)[1] if t.lower().startswith("memory.") else t, c, s) for t, c, s in sources}
        if cleaned and not name.startswith("#"):
            result.setdefault(name, set()).update(cleaned)
    return result


def add_model_column_lineage(output: Any, inputs: list[Any], sql: str | None) -> None:
    """Complete ``output``'s columnLineage facet with what the compiled ``sql`` says (see module docstring);
    a column keeps what openlineage-sql found and gains what is found here."""
    from .facets import table_schemas

    columns = [f.name for f in ((output.facets or {}).get("schema").fields or [])] if (output.facets or {}).get("schema") else []
    if not sql or not columns:
        return
    tables = [t for t in (naming.table_of(d.namespace, d.name) for d in [*inputs, output]) if t]
    schemas = table_schemas(tables)
    schemas.update({f"memory.{table}": names for table, names in list(schemas.items())})
    try:
        found = column_sources(sql, schemas)
    except Unsupported as reason:
        log.info("column lineage of %s: %s", output.name, reason)
        return
    except Exception:  # noqa: BLE001 - a parse tree shape not foreseen: no column lineage, never a failed task
        log.info("column lineage of %s could not be derived", output.name, exc_info=True)
        return
    namespace = naming.iceberg_namespace()
    existing = (output.facets or {}).get("columnLineage")
    fields: dict[str, Any] = dict(existing.fields) if existing is not None else {}
    by_lower = {name.lower(): name for name in found}
    for column in columns:
        sources = found.get(by_lower.get(column.lower(), ""), set())
        if not sources:
            continue
        known = {(f.namespace, f.name, f.field) for f in (fields[column].inputFields if column in fields else [])}
        extra = [column_lineage_dataset.InputField(
            namespace=namespace, name=table, field=source_column,
            transformations=[column_lineage_dataset.Transformation(type="DIRECT", subtype=subtype)])
            for table, source_column, subtype in sorted(sources)
            if naming.table_of(namespace, table) and table != output.name and (namespace, table, source_column) not in known]
        if extra:
            previous = fields[column].inputFields if column in fields else []
            fields[column] = column_lineage_dataset.Fields(inputFields=[*previous, *extra])
    if fields:
        output.facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields)
