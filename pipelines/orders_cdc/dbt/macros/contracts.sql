{#- Enforced contracts that let schema evolution add columns (lakehouse.assert_contract_columns):
    a contracted model with on_schema_change='append_new_columns' must have every declared column
    with its declared type and may have more; every other contracted model gets dbt's own check.
    Only a root project can override this dbt macro, hence these lines here (one per engine). -#}
{% macro duckdb__get_assert_columns_equivalent(sql) %}{{ return(lakehouse.assert_contract_columns(sql)) }}{% endmacro %}
{% macro spark__get_assert_columns_equivalent(sql) %}{{ return(lakehouse.assert_contract_columns(sql)) }}{% endmacro %}
