{#- dbt_utils' names, forwarding to the lakehouse package (macros/compat/dbt_utils.sql). -#}
{% macro generate_surrogate_key(field_list) %}{{ return(lakehouse.generate_surrogate_key(field_list)) }}{% endmacro %}
{% macro get_filtered_columns_in_relation(from, except=[]) %}{{ return(lakehouse.get_filtered_columns_in_relation(from, except)) }}{% endmacro %}
{% macro star(from, relation_alias=False, except=[], prefix='', suffix='', quote_identifiers=True) %}{{ return(lakehouse.star(from, relation_alias, except, prefix, suffix, quote_identifiers)) }}{% endmacro %}
{% macro union_relations(relations, column_override=none, include=[], exclude=[], source_column_name='_dbt_source_relation', where=none) %}{{ return(lakehouse.union_relations(relations, column_override, include, exclude, source_column_name, where)) }}{% endmacro %}
{% macro safe_divide(numerator, denominator) %}{{ return(lakehouse.safe_divide(numerator, denominator)) }}{% endmacro %}
{% macro safe_add(field_list) %}{{ return(lakehouse.safe_add(field_list)) }}{% endmacro %}
{% macro safe_subtract(field_list) %}{{ return(lakehouse.safe_subtract(field_list)) }}{% endmacro %}
{% macro group_by(n) %}{{ return(lakehouse.group_by(n)) }}{% endmacro %}
{% macro slugify(string) %}{{ return(lakehouse.slugify(string)) }}{% endmacro %}
{% macro pivot(column, values, alias=True, agg='sum', cmp='=', prefix='', suffix='', then_value=1, else_value=0, quote_identifiers=True, distinct=False) %}{{ return(lakehouse.pivot(column, values, alias, agg, cmp, prefix, suffix, then_value, else_value, quote_identifiers, distinct)) }}{% endmacro %}
{% macro get_column_values(table, column, order_by='count(*) desc', max_records=none, default=none, where=none) %}{{ return(lakehouse.get_column_values(table, column, order_by, max_records, default, where)) }}{% endmacro %}
{% macro get_single_value(query, default=none) %}{{ return(lakehouse.get_single_value(query, default)) }}{% endmacro %}
{% macro get_relations_by_pattern(schema_pattern, table_pattern, exclude='', database=target.database) %}{{ return(lakehouse.get_relations_by_pattern(schema_pattern, table_pattern, exclude, database)) }}{% endmacro %}
{% macro deduplicate(relation, partition_by, order_by) %}{{ return(lakehouse.deduplicate(relation, partition_by, order_by)) }}{% endmacro %}
{% macro generate_series(upper_bound) %}{{ return(lakehouse.generate_series(upper_bound)) }}{% endmacro %}
{% macro date_spine(datepart, start_date, end_date) %}{{ return(lakehouse.date_spine(datepart, start_date, end_date)) }}{% endmacro %}
