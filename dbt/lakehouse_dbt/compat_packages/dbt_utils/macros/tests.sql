{#- dbt_utils' generic tests, forwarding to the lakehouse package (macros/tests/). -#}
{% test expression_is_true(model, expression, column_name=none) %}{{ lakehouse.test_expression_is_true(model, expression, column_name) }}{% endtest %}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}{{ lakehouse.test_accepted_range(model, column_name, min_value, max_value, inclusive) }}{% endtest %}
{% test not_null_proportion(model, column_name, at_least, at_most=1.0, group_by_columns=[]) %}{{ lakehouse.test_not_null_proportion(model, column_name, at_least, at_most, group_by_columns) }}{% endtest %}
{% test not_constant(model, column_name, group_by_columns=[]) %}{{ lakehouse.test_not_constant(model, column_name, group_by_columns) }}{% endtest %}
{% test at_least_one(model, column_name, group_by_columns=[]) %}{{ lakehouse.test_at_least_one(model, column_name, group_by_columns) }}{% endtest %}
{% test recency(model, field, datepart, interval, ignore_time_component=false, group_by_columns=[]) %}{{ lakehouse.test_recency(model, field, datepart, interval, ignore_time_component, group_by_columns) }}{% endtest %}
{% test equal_rowcount(model, compare_model, group_by_columns=[]) %}{{ lakehouse.test_equal_rowcount(model, compare_model, group_by_columns) }}{% endtest %}
{% test fewer_rows_than(model, compare_model, group_by_columns=[]) %}{{ lakehouse.test_fewer_rows_than(model, compare_model, group_by_columns) }}{% endtest %}
{% test unique_combination_of_columns(model, combination_of_columns, quote_columns=false) %}{{ lakehouse.test_unique_combination_of_columns(model, combination_of_columns, quote_columns) }}{% endtest %}
{% test relationships_where(model, column_name, to, field, from_condition='1=1', to_condition='1=1') %}{{ lakehouse.test_relationships_where(model, column_name, to, field, from_condition, to_condition) }}{% endtest %}
{% test sequential_values(model, column_name, interval=1, datepart=none, group_by_columns=[]) %}{{ lakehouse.test_sequential_values(model, column_name, interval, datepart, group_by_columns) }}{% endtest %}
{% test cardinality_equality(model, column_name, to, field) %}{{ lakehouse.test_cardinality_equality(model, column_name, to, field) }}{% endtest %}
{% test not_accepted_values(model, column_name, values, quote=true) %}{{ lakehouse.test_not_accepted_values(model, column_name, values, quote) }}{% endtest %}
{% test not_empty_string(model, column_name, trim_whitespace=true) %}{{ lakehouse.test_not_empty_string(model, column_name, trim_whitespace) }}{% endtest %}
{% test equality(model, compare_model, compare_columns=none, exclude_columns=none, precision=none) %}{{ lakehouse.test_equality(model, compare_model, compare_columns, exclude_columns, precision) }}{% endtest %}
