{#- dbt's relation cache sees Iceberg tables as the views the plugin registers. Report them as
    tables, so is_incremental() and dbt's relation checks treat them as the tables they are. -#}
{% macro list_iceberg_relations(schema_relation) %}
  {% call statement('list_relations_without_caching', fetch_result=True) -%}
    select
      '{{ schema_relation.database }}' as database,
      t.table_name as name,
      t.table_schema as schema,
      case
        when t.table_type = 'VIEW' and v.comment = 'iceberg' then 'table'
        when t.table_type = 'VIEW' then 'view'
        else 'table'
      end as type
    from system.information_schema.tables as t
    left join duckdb_views() as v
      on v.database_name = t.table_catalog
      and v.schema_name = t.table_schema
      and v.view_name = t.table_name
    where lower(t.table_schema) = '{{ schema_relation.schema | lower }}'
      and lower(t.table_catalog) = '{{ schema_relation.database | lower }}'
  {% endcall %}
  {{ return(load_result('list_relations_without_caching').table) }}
{% endmacro %}


{#- Models land in the Iceberg namespace of their layer, named by +schema (raw, staging, marts,
    audit, quarantine), shared by all pipelines - not dbt's default <target>_<schema>. -#}
{% macro layer_schema_name(custom_schema_name, node) %}
  {%- set layers = ['raw', 'staging', 'marts', 'audit', 'quarantine'] -%}
  {%- if node.resource_type not in ['model', 'seed', 'snapshot'] or target.type != 'duckdb' -%}
    {{ (custom_schema_name or target.schema) | trim }}
  {%- elif custom_schema_name is none -%}
    {{ exceptions.raise_compiler_error(node.resource_type ~ " " ~ node.name ~ " has no +schema: set it to one of " ~ layers | join(', ')) }}
  {%- elif custom_schema_name | trim not in layers -%}
    {{ exceptions.raise_compiler_error(node.name ~ ": schema '" ~ custom_schema_name ~ "' is not a lakehouse layer; use one of " ~ layers | join(', ')) }}
  {%- else -%}
    {{ custom_schema_name | trim }}
  {%- endif -%}
{% endmacro %}
