{#-
  Iceberg materializations for the DuckDB engine. The model's SQL runs in the in-memory DuckDB into a
  scratch table; the lakehouse dbt plugin (src/lakehouse/dbt_plugin.py) commits it to the Iceberg
  table <schema>.<alias> in ONE PyIceberg snapshot and re-points the view. A model whose SQL fails
  never reaches the commit, so the table keeps its previous snapshot.

  dbt lets only the root project replace built-in materializations, so each pipeline's dbt project
  routes to these by linking project_macros/lakehouse_platform.sql (one-line wrappers, see the README).

  A Python model (`def model(dbt, session)`, returning a pandas DataFrame, a pyarrow Table or a DuckDB
  relation) is run by the plugin in this process, with `session` the run's DuckDB and `dbt.ref()` /
  `dbt.source()` reading the plugin's Iceberg-backed views; its result lands in the same scratch table
  and takes the same commit. A model that raises never reaches the commit either.
-#}

{% macro iceberg_materialize(strategy) %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set scratch = api.Relation.create(database=this.database, schema='main', identifier=this.identifier ~ '__lakehouse_result', type='table') -%}
  {%- set unique_key = config.get('unique_key') -%}
  {%- set partition_by = config.get('partition_by') -%}
  {%- do lakehouse.assert_layer_schema(this) -%}

  {{ run_hooks(pre_hooks) }}
  {%- set python_job = none -%}
  {%- if model.language == 'python' -%}
    {#- dbt's own route for Python (statement(language='python') -> submit_python_job) only works
        from the materialization dbt called, and the root project's routing wrapper is that one: the
        plugin runs the model instead (dbt-duckdb's run_python_job on the run's DuckDB), and its
        result fills the scratch table (dbt-duckdb's py_write_table), the same commit follows.
        No contract check: dbt refuses `contract: {enforced: true}` on a Python model when it parses. -#}
    {% call statement('lakehouse_drop_scratch') -%}
      drop table if exists {{ scratch }}
    {%- endcall %}
    {%- set python_job = py_write_table(temporary=false, relation=scratch, compiled_code=compiled_code) -%}
    {% call noop_statement('main', 'OK', code='OK') -%}
      {{ python_job }}
    {%- endcall %}
  {%- else -%}
    {#- An enforced contract: the result's columns and types must be the declared ones, checked
        before anything is written (dbt's own check, as its table materialization does). -#}
    {%- if config.get('contract').enforced -%}
      {{ get_assert_columns_equivalent(compiled_code) }}
    {%- endif %}
    {% call statement('main') -%}
      create or replace table {{ scratch }} as (
        {{ compiled_code }}
      )
    {%- endcall %}
  {%- endif %}
  {% do adapter.store_relation(
      'lakehouse', scratch, [], this.schema ~ '.' ~ this.identifier, 'iceberg',
      {'strategy': strategy, 'unique_key': unique_key, 'partition_by': partition_by,
       'tombstone_column': config.get('tombstone_column'),
       'node': model.unique_id, 'invocation_id': invocation_id, 'python_job': python_job}) %}
  {{ run_hooks(post_hooks) }}
  {{ return({'relations': [target_relation]}) }}
{% endmacro %}


{% materialization table, adapter='duckdb', supported_languages=['sql', 'python'] %}
  {{ return(lakehouse.iceberg_materialize('overwrite')) }}
{% endmaterialization %}


{% materialization incremental, adapter='duckdb', supported_languages=['sql', 'python'] %}
  {#- A first run or --full-refresh rebuilds the whole table; afterwards the strategy applies.
      delete+insert replaces all rows of each unique_key in the batch; with tombstone_column (a
      boolean column of the result), rows where it is true delete their key and are not inserted:
      the change-data-capture merge (see the package README). -#}
  {%- set strategy = config.get('incremental_strategy') or 'append' -%}
  {%- set strategies = {'append': 'append', 'merge': 'merge', 'insert_overwrite': 'insert_overwrite', 'delete+insert': 'delete_insert'} -%}
  {%- if strategy not in strategies -%}
    {{ exceptions.raise_compiler_error("incremental_strategy '" ~ strategy ~ "' is not supported on Iceberg here; use " ~ strategies.keys() | join(', ')) }}
  {%- endif -%}
  {%- if strategy in ['merge', 'delete+insert'] and not config.get('unique_key') -%}
    {{ exceptions.raise_compiler_error("incremental_strategy '" ~ strategy ~ "' needs a unique_key") }}
  {%- endif -%}
  {{ return(lakehouse.iceberg_materialize(strategies[strategy] if is_incremental() else 'overwrite')) }}
{% endmaterialization %}


{% materialization seed, adapter='duckdb' %}
  {#- Load the CSV into DuckDB with dbt's own loader, then commit it to Iceberg like a table model. -#}
  {%- do lakehouse.assert_layer_schema(this) -%}
  {%- set agate_table = load_agate_table() -%}
  {%- do store_result('agate_table', response='OK', agate_table=agate_table) -%}
  {% call statement('drop_registered_view') -%}
    drop view if exists {{ this }}
  {%- endcall %}
  {%- set create_sql = create_csv_table(model, agate_table) -%}
  {%- set load_sql = load_csv_rows(model, agate_table) -%}
  {#- dbt loads seed rows through add_query, which opens a transaction even with
      disable_transactions: commit it so the plugin's cursor sees the rows. -#}
  {%- do adapter.commit() -%}
  {% call noop_statement('main', 'INSERT ' ~ (agate_table.rows | length), code='INSERT', rows_affected=(agate_table.rows | length)) -%}
    {{ create_sql }}
  {%- endcall %}
  {% do adapter.store_relation(
      'lakehouse', this.incorporate(type='table'), [], this.schema ~ '.' ~ this.identifier, 'iceberg',
      {'strategy': 'overwrite', 'node': model.unique_id, 'invocation_id': invocation_id}) %}
  {{ return({'relations': [this.incorporate(type='table')]}) }}
{% endmaterialization %}


{% materialization view, adapter='duckdb' %}
  {{ exceptions.raise_compiler_error("model " ~ model.name ~ ": materialized='view' would live only in one task's in-memory DuckDB; use 'table', 'incremental' or 'ephemeral'") }}
{% endmaterialization %}
