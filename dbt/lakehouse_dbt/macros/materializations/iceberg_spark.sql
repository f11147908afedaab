{#-
  Iceberg materializations for the Spark engine, in Iceberg's own Spark SQL. The same model configs
  as on DuckDB (materialized, incremental_strategy, unique_key, partition_by, tombstone_column,
  contracts) and the same outcome, each data change ONE Iceberg commit:

  - table, a first run, --full-refresh: CREATE OR REPLACE TABLE ... USING iceberg AS (an atomic replace
    that also takes the new columns and partitioning);
  - append: INSERT INTO; merge: MERGE INTO ... WHEN MATCHED UPDATE / WHEN NOT MATCHED INSERT;
  - delete+insert: one MERGE INTO that deletes every row of a key in the batch and inserts the batch's
    rows (tombstones only delete);
  - insert_overwrite: INSERT OVERWRITE with dynamic partition overwrite (only the partitions present).

  The batch is computed once (CACHE TABLE of the model's SQL), so checks and the write read the same rows.
  New columns are added first with ALTER TABLE ... ADD COLUMNS: a schema change is its own metadata-only
  commit in Spark (SQL has no way to evolve the schema inside the data commit), so a model that fails
  after it leaves the previous rows with the new, empty column.
  Routed to by project_macros/lakehouse_platform.sql, as the DuckDB ones.
-#}

{% macro spark_partition_clause(partition_by) -%}
  {%- if partition_by -%}
    {%- set fields = [partition_by] if partition_by is string else partition_by -%}
    partitioned by ({{ fields | join(', ') }})
  {%- endif -%}
{%- endmacro %}


{% macro spark_batch_columns(relation, tombstone_column=none) %}
  {%- set columns = [] -%}
  {%- for column in adapter.get_columns_in_relation(relation) if column.name != tombstone_column -%}
    {%- do columns.append(column) -%}
  {%- endfor -%}
  {{ return(columns) }}
{% endmacro %}


{#- The batch is a cached temporary view of the server's one shared session: drop it (before, in case a
    killed run left it, and after) so the next run of the model can make it again. -#}
{% macro spark_drop_batch(batch) %}
  {% call statement('lakehouse_uncache') -%}uncache table if exists {{ batch }}{%- endcall %}
  {% call statement('lakehouse_drop_batch') -%}drop view if exists {{ batch }}{%- endcall %}
{% endmacro %}


{% macro spark_key_list(unique_key) -%}
  {{- "['" ~ (([unique_key] if unique_key is string else unique_key) | join("', '")) ~ "']" -}}
{%- endmacro %}


{#- dbt-spark runs Python models only by submitting them to Databricks (its job_cluster and
    all_purpose_cluster methods), never over Thrift or a session: say so before anything runs. -#}
{% macro spark_refuse_python_model() %}
  {%- if model.language == 'python' -%}
    {{ exceptions.raise_compiler_error("model " ~ model.name ~ " is a Python model, and Python models run on the DuckDB engine only (LAKEHOUSE_ENGINE=duckdb): dbt-spark submits Python only to Databricks, not over Thrift or a Spark session. Run this project on DuckDB, or write the model in SQL.") }}
  {%- endif -%}
{% endmacro %}


{% macro spark_iceberg_materialize(strategy) %}
  {%- do lakehouse.spark_refuse_python_model() -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set batch = api.Relation.create(identifier=this.identifier ~ '__lakehouse_batch', type='view') -%}
  {%- set unique_key = config.get('unique_key') -%}
  {%- set keys = ([unique_key] if unique_key is string else unique_key) if unique_key else [] -%}
  {%- set partition_by = config.get('partition_by') -%}
  {%- set tombstone = config.get('tombstone_column') -%}
  {%- set existing = load_cached_relation(this) -%}
  {%- do lakehouse.assert_layer_schema(this) -%}
  {%- if strategy != 'overwrite' and existing is none -%}{%- set strategy = 'overwrite' -%}{%- endif -%}

  {{ run_hooks(pre_hooks) }}
  {%- if config.get('contract').enforced -%}
    {{ get_assert_columns_equivalent(compiled_code) }}
  {%- endif %}
  {{ lakehouse.spark_drop_batch(batch) }}
  {% call statement('lakehouse_batch') -%}
    cache table {{ batch }} as
    {{ compiled_code }}
  {%- endcall %}
  {%- set columns = lakehouse.spark_batch_columns(batch, tombstone) -%}
  {%- set names = columns | map(attribute='name') | list -%}
  {%- if tombstone and tombstone not in (adapter.get_columns_in_relation(batch) | map(attribute='name') | list) -%}
    {{ exceptions.raise_compiler_error(this.schema ~ "." ~ this.identifier ~ ": tombstone_column '" ~ tombstone ~ "' is not in the result") }}
  {%- endif -%}
  {%- set live = "not coalesce(" ~ tombstone ~ ", false)" if tombstone else "true" -%}
  {%- for key in keys if key not in names -%}
    {{ exceptions.raise_compiler_error(strategy ~ " into " ~ this.schema ~ "." ~ this.identifier ~ ": unique_key column(s) ['" ~ key ~ "'] are not in the result") }}
  {%- endfor -%}
  {%- if strategy == 'merge' -%}
    {%- set duplicates = run_query("select count(*) from (select 1 from " ~ batch ~ " group by " ~ keys | join(', ') ~ " having count(*) > 1) as d").columns[0].values()[0] -%}
    {%- if duplicates > 0 -%}
      {{ lakehouse.spark_drop_batch(batch) }}
      {{ exceptions.raise_compiler_error("merge into " ~ this.schema ~ "." ~ this.identifier ~ ": the new rows hold duplicate values of unique_key " ~ lakehouse.spark_key_list(unique_key) ~ "; deduplicate the model's result before merging") }}
    {%- endif -%}
  {%- endif -%}

  {%- if strategy == 'overwrite' -%}
    {% call statement('main') -%}
      create or replace table {{ target_relation }}
      using iceberg
      {{ lakehouse.spark_partition_clause(partition_by) }}
      as select {{ names | join(', ') }} from {{ batch }} where {{ live }}
    {%- endcall %}
  {%- else -%}
    {#- Schema evolution: the batch's new columns join the table (nullable) before the data commit. -#}
    {%- set existing_columns = adapter.get_columns_in_relation(target_relation) -%}
    {%- set existing_names = existing_columns | map(attribute='name') | map('lower') | list -%}
    {%- set added = [] -%}
    {%- for column in columns if column.name | lower not in existing_names -%}
      {%- do added.append(column.name ~ ' ' ~ column.data_type) -%}
    {%- endfor -%}
    {%- if added -%}
      {% call statement('lakehouse_add_columns') -%}
        alter table {{ target_relation }} add columns ({{ added | join(', ') }})
      {%- endcall %}
    {%- endif -%}
    {#- The table's columns in its order; one the batch lacks is written as null. -#}
    {%- set target_names = existing_columns | map(attribute='name') | list -%}
    {%- for column in columns if column.name | lower not in existing_names -%}
      {%- do target_names.append(column.name) -%}
    {%- endfor -%}
    {%- set batch_names = names | map('lower') | list -%}
    {%- set select_list = [] -%}
    {%- for name in target_names -%}
      {%- do select_list.append(name if name | lower in batch_names else 'null as ' ~ name) -%}
    {%- endfor -%}
    {% call statement('main') -%}
      {%- if strategy == 'append' %}
      insert into {{ target_relation }} select {{ select_list | join(', ') }} from {{ batch }}
      {%- elif strategy == 'insert_overwrite' %}
      insert overwrite table {{ target_relation }} select {{ select_list | join(', ') }} from {{ batch }}
      {%- elif strategy == 'merge' %}
      merge into {{ target_relation }} as t
      using {{ batch }} as s
      on {% for key in keys %}t.{{ key }} = s.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
      when matched then update set {% for name in names %}t.{{ name }} = s.{{ name }}{% if not loop.last %}, {% endif %}{% endfor %}
      when not matched then insert ({{ names | join(', ') }}) values ({% for name in names %}s.{{ name }}{% if not loop.last %}, {% endif %}{% endfor %})
      {%- elif strategy == 'delete_insert' %}
      {#- Each key of the batch once as a delete marker (it matches every row of that key), and the
          batch's live rows as inserts that never match: one MERGE, one commit. -#}
      merge into {{ target_relation }} as t
      using (
        select distinct {{ keys | join(', ') }}{% for name in names if name not in keys %}, null as {{ name }}{% endfor %}, true as lakehouse_delete_marker
        from {{ batch }}
        union all
        select {{ keys | join(', ') }}{% for name in names if name not in keys %}, {{ name }}{% endfor %}, false as lakehouse_delete_marker
        from {{ batch }} where {{ live }}
      ) as s
      on s.lakehouse_delete_marker and {% for key in keys %}t.{{ key }} = s.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
      when matched then delete
      when not matched and not s.lakehouse_delete_marker then insert ({{ names | join(', ') }}) values ({% for name in names %}s.{{ name }}{% if not loop.last %}, {% endif %}{% endfor %})
      {%- endif %}
    {%- endcall %}
  {%- endif -%}
  {{ lakehouse.spark_drop_batch(batch) }}
  {% do adapter.cache_added(target_relation) if existing is none %}
  {{ run_hooks(post_hooks) }}
  {{ return({'relations': [target_relation]}) }}
{% endmacro %}


{% materialization table, adapter='spark', supported_languages=['sql', 'python'] %}
  {{ return(lakehouse.spark_iceberg_materialize('overwrite')) }}
{% endmaterialization %}


{% materialization incremental, adapter='spark', supported_languages=['sql', 'python'] %}
  {%- do lakehouse.spark_refuse_python_model() -%}
  {%- set strategy = config.get('incremental_strategy') or 'append' -%}
  {%- set strategies = {'append': 'append', 'merge': 'merge', 'insert_overwrite': 'insert_overwrite', 'delete+insert': 'delete_insert'} -%}
  {%- if strategy not in strategies -%}
    {{ exceptions.raise_compiler_error("incremental_strategy '" ~ strategy ~ "' is not supported on Iceberg here; use " ~ strategies.keys() | join(', ')) }}
  {%- endif -%}
  {%- if strategy in ['merge', 'delete+insert'] and not config.get('unique_key') -%}
    {{ exceptions.raise_compiler_error("incremental_strategy '" ~ strategy ~ "' needs a unique_key") }}
  {%- endif -%}
  {%- if strategy == 'insert_overwrite' -%}
    {% call statement('lakehouse_dynamic_overwrite') -%}set spark.sql.sources.partitionOverwriteMode = dynamic{%- endcall %}
  {%- endif -%}
  {{ return(lakehouse.spark_iceberg_materialize(strategies[strategy] if is_incremental() else 'overwrite')) }}
{% endmaterialization %}


{% materialization seed, adapter='spark' %}
  {#- The CSV as one CREATE OR REPLACE TABLE ... AS SELECT over its rows written as literals: one commit. -#}
  {%- do lakehouse.assert_layer_schema(this) -%}
  {%- set agate_table = load_agate_table() -%}
  {%- do store_result('agate_table', response='OK', agate_table=agate_table) -%}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set columns = [] -%}
  {%- for name in agate_table.column_names -%}
    {%- set type = column_override.get(name) or adapter.convert_type(agate_table, loop.index0) -%}
    {%- do columns.append({'name': name, 'type': type}) -%}
  {%- endfor -%}
  {% call statement('main') -%}
    create or replace table {{ this.incorporate(type='table') }}
    using iceberg
    as select {% for column in columns %}cast({{ column.name }} as {{ column.type }}) as {{ column.name }}{% if not loop.last %}, {% endif %}{% endfor %}
    from values
    {%- for row in agate_table.rows %}
      ({% for value in row %}{{ lakehouse.spark_literal(value) }}{% if not loop.last %}, {% endif %}{% endfor %}){% if not loop.last %},{% endif %}
    {%- endfor %}
    {%- if not agate_table.rows %} ({% for column in columns %}null{% if not loop.last %}, {% endif %}{% endfor %}){% endif %}
    as seed_rows ({{ columns | map(attribute='name') | join(', ') }})
    {%- if not agate_table.rows %} where false{% endif %}
  {%- endcall %}
  {% do adapter.cache_added(this.incorporate(type='table')) %}
  {{ return({'relations': [this.incorporate(type='table')]}) }}
{% endmaterialization %}


{#- A value of a seed row as a Spark SQL literal (strings quoted, backslash and quote escaped). -#}
{% macro spark_literal(value) -%}
  {%- if value is none -%}null
  {%- elif value is sameas true -%}true
  {%- elif value is sameas false -%}false
  {%- elif value is number -%}{{ value }}
  {%- else -%}'{{ (value | string).replace("\\", "\\\\").replace("'", "\\'") }}'
  {%- endif -%}
{%- endmacro %}


{% materialization view, adapter='spark' %}
  {{ exceptions.raise_compiler_error("model " ~ model.name ~ ": materialized='view' would be a view DuckDB and PyIceberg cannot read; use 'table', 'incremental' or 'ephemeral'") }}
{% endmaterialization %}
