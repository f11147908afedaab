{#- Route dbt's built-ins to the shared lakehouse package: every model and seed becomes an Iceberg
    table in the namespace of its layer. dbt allows only a root project to do this, so every
    pipeline's dbt project links this one file into its macros/ folder (a symlink, not a copy):
      ln -s ../../../../dbt/lakehouse_dbt/project_macros/lakehouse_platform.sql pipelines/<name>/dbt/macros/
    It sits outside the package's macro-paths, so the package itself never loads it.
    The same for the spark adapter (materializations/iceberg_spark.sql; unit tests and dbt-spark's
    describe macro through unit_testing.sql).
    Schema names go through dbt's dispatch (duckdb__generate_schema_name), so a project that has its
    own generate_schema_name keeps it beside this file (package README, "A project with its own
    generate_schema_name").
    Python models (`table`, `incremental`) run on DuckDB; on Spark they stop with a message saying so. -#}
{% materialization table, adapter='duckdb', supported_languages=['sql', 'python'] %}{{ return(lakehouse.materialization_table_duckdb()) }}{% endmaterialization %}
{% materialization incremental, adapter='duckdb', supported_languages=['sql', 'python'] %}{{ return(lakehouse.materialization_incremental_duckdb()) }}{% endmaterialization %}
{% materialization seed, adapter='duckdb' %}{{ return(lakehouse.materialization_seed_duckdb()) }}{% endmaterialization %}
{% materialization view, adapter='duckdb' %}{{ return(lakehouse.materialization_view_duckdb()) }}{% endmaterialization %}
{% macro duckdb__generate_schema_name(custom_schema_name, node) %}{{ lakehouse.layer_schema_name(custom_schema_name, node) }}{% endmacro %}
{% macro duckdb__list_relations_without_caching(schema_relation) %}{{ return(lakehouse.list_iceberg_relations(schema_relation)) }}{% endmacro %}
{% macro duckdb__get_columns_in_relation(relation) %}{{ return(lakehouse.get_columns_in_relation_duckdb(relation)) }}{% endmacro %}
{% materialization table, adapter='spark', supported_languages=['sql', 'python'] %}{{ return(lakehouse.materialization_table_spark()) }}{% endmaterialization %}
{% materialization incremental, adapter='spark', supported_languages=['sql', 'python'] %}{{ return(lakehouse.materialization_incremental_spark()) }}{% endmaterialization %}
{% materialization seed, adapter='spark' %}{{ return(lakehouse.materialization_seed_spark()) }}{% endmaterialization %}
{% materialization view, adapter='spark' %}{{ return(lakehouse.materialization_view_spark()) }}{% endmaterialization %}
{% macro spark__generate_schema_name(custom_schema_name, node) %}{{ lakehouse.layer_schema_name(custom_schema_name, node) }}{% endmacro %}
{% materialization unit, adapter='spark' %}{{ return(lakehouse.materialization_unit_spark()) }}{% endmaterialization %}
{% macro spark__get_columns_in_relation_raw(relation) %}{{ return(lakehouse.get_columns_in_relation_raw_spark(relation)) }}{% endmacro %}
