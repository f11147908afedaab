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


{#- The Iceberg namespaces every pipeline shares (lakehouse.identifiers.NAMESPACES). -#}
{% macro layers() %}{{ return(['raw', 'staging', 'marts', 'audit', 'quarantine']) }}{% endmacro %}


{#- Models land in the Iceberg namespace of their layer, named by +schema (raw, staging, marts,
    audit, quarantine), shared by all pipelines - not dbt's default <target>_<schema>. -#}
{% macro layer_schema_name(custom_schema_name, node) %}
  {%- set layers = lakehouse.layers() -%}
  {%- if node.resource_type not in ['model', 'seed', 'snapshot'] or target.type not in ['duckdb', 'spark'] -%}
    {{ (custom_schema_name or target.schema) | trim }}
  {%- elif custom_schema_name is none -%}
    {{ exceptions.raise_compiler_error(node.resource_type ~ " " ~ node.name ~ " has no +schema: set it to one of " ~ layers | join(', ')) }}
  {%- elif custom_schema_name | trim not in layers -%}
    {{ exceptions.raise_compiler_error(node.name ~ ": schema '" ~ custom_schema_name ~ "' is not a lakehouse layer; use one of " ~ layers | join(', ')) }}
  {%- else -%}
    {{ custom_schema_name | trim }}
  {%- endif -%}
{% endmacro %}


{#- What the materializations check before they write: the table's namespace is a layer. Without a
    project macro of its own, layer_schema_name has made sure of it; a project's own
    generate_schema_name may return anything (dbt's default gives <target schema>_<+schema>). -#}
{% macro assert_layer_schema(relation) %}
  {%- if relation.schema not in lakehouse.layers() -%}
    {%- set configured = config.get('schema') -%}
    {{ exceptions.raise_compiler_error(
        model.resource_type ~ " " ~ model.name ~ " would be written to the Iceberg namespace '" ~ relation.schema ~ "', "
        ~ "which is not a lakehouse layer (" ~ lakehouse.layers() | join(', ') ~ ")"
        ~ (" although its +schema is '" ~ configured ~ "'" if configured else "") ~ ": the project's own "
        ~ "generate_schema_name returned it. Have that macro return lakehouse.layer_schema_name(custom_schema_name, node) "
        ~ "on this target, or delete it (dbt/lakehouse_dbt/README.md, 'A project with its own generate_schema_name').") }}
  {%- endif -%}
{% endmacro %}
