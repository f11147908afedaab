{#- dbt unit tests (`unit_tests:` in YAML) on this platform.

    A unit test runs the model's SQL over fixture CTEs: every ref(), source() and `this` of the
    tested model becomes `__dbt__cte__<name>` (`this` even a plain string). Nothing is written to
    Iceberg: dbt's own `unit` materialization builds a temporary DuckDB table from the SQL, so the
    table / incremental routing is not involved. What does need routing is reading columns: macros
    that ask adapter.get_columns_in_relation() for a ref() or `this` (schema evolution, CDC state
    comparison, star(), union_relations()) would find no such relation and build other SQL in a
    unit test than in a run. dbt builds a dict or csv fixture from exactly the columns of the
    relation it stands for, so those columns are the right answer: the routing file sends
    duckdb__get_columns_in_relation here, and a fixture CTE is read as that relation.
    (A fixture given as `format: sql` has the columns its SQL selects, which may be fewer.) -#}

{#- The relation (model, seed, snapshot or source) a unit-test fixture CTE stands for; none for
    anything else. Called where dbt runs adapter macros, whose `graph` is the whole project's (a
    unit test's own compile context has an empty one). -#}
{% macro unit_test_fixture_relation(relation) %}
  {%- set prefix = '__dbt__cte__' -%}
  {%- if relation is string -%}
    {%- set identifier = relation -%}
  {%- elif relation is mapping and relation.is_cte -%}
    {%- set identifier = relation.identifier -%}
  {%- else -%}
    {{ return(none) }}
  {%- endif -%}
  {%- if not identifier or not identifier.startswith(prefix) -%}{{ return(none) }}{%- endif -%}
  {%- set name = identifier[prefix | length:] -%}
  {%- for node in graph.get('nodes', {}).values()
        if node.resource_type in ['model', 'seed', 'snapshot'] and node.config.materialized != 'ephemeral'
           and (node.alias or node.name) == name -%}
    {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias or node.name)) }}
  {%- endfor -%}
  {%- for source in graph.get('sources', {}).values() if source.source_name ~ '__' ~ source.name == name -%}
    {{ return(api.Relation.create(database=source.database, schema=source.schema, identifier=source.identifier)) }}
  {%- endfor -%}
  {{ return(none) }}
{% endmacro %}


{#- duckdb__get_columns_in_relation, seeing through unit-test fixtures (routed by the routing file). -#}
{% macro get_columns_in_relation_duckdb(relation) %}
  {{ return(dbt.duckdb__get_columns_in_relation(lakehouse.unit_test_fixture_relation(relation) or relation)) }}
{% endmacro %}


{#- dbt's `unit` materialization for Spark through the Thrift server. dbt's own default creates the
    temporary relation with run_query(), which fetches a result; a DDL statement through PyHive has
    none and fails ("'NoneType' object is not iterable"). The same steps, with the DDL as a statement. -#}
{% materialization unit, adapter='spark' %}
  {%- set expected_rows = config.get('expected_rows') -%}
  {%- set expected_sql = config.get('expected_sql') -%}
  {%- set tested_expected_column_names = expected_rows[0].keys() if (expected_rows | length) > 0 else get_columns_in_query(sql) -%}
  {%- set temp_relation = make_temp_relation(this.incorporate(type='table')) -%}
  {% call statement('lakehouse_unit_columns') -%}
    {{ get_create_table_as_sql(True, temp_relation, get_empty_subquery_sql(sql)) }}
  {%- endcall %}
  {%- set column_name_to_data_types = {} -%}
  {%- set column_name_to_quoted = {} -%}
  {%- for column in adapter.get_columns_in_relation(temp_relation) -%}
    {%- do column_name_to_data_types.update({column.name | lower: column.data_type}) -%}
    {%- do column_name_to_quoted.update({column.name | lower: column.quoted}) -%}
  {%- endfor -%}
  {%- set expected_column_names_quoted = [] -%}
  {%- for column_name in tested_expected_column_names -%}
    {%- do expected_column_names_quoted.append(column_name_to_quoted[column_name | lower]) -%}
  {%- endfor -%}
  {%- if not expected_sql -%}
    {%- set expected_sql = get_expected_sql(expected_rows, column_name_to_data_types, column_name_to_quoted) -%}
  {%- endif -%}
  {% call statement('main', fetch_result=True) -%}
    {{ get_unit_test_sql(sql, expected_sql, expected_column_names_quoted) }}
  {%- endcall %}
  {% call statement('lakehouse_unit_drop') -%}drop view if exists {{ temp_relation }}{%- endcall %}
  {{ return({'relations': []}) }}
{% endmaterialization %}


{#- dbt-spark's adapter.get_columns_in_relation() describes the relation with the macro
    get_columns_in_relation_raw: seeing through unit-test fixtures there (routed by the routing file). -#}
{% macro get_columns_in_relation_raw_spark(relation) %}
  {{ return(dbt.spark__get_columns_in_relation_raw(lakehouse.unit_test_fixture_relation(relation) or relation)) }}
{% endmacro %}
