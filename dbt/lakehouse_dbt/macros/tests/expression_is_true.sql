{#- dbt_utils.expression_is_true: every row satisfies the expression (with column_name: the column,
    then the expression, e.g. '>= 0'); a failing row is one where it is false. NULL is not false:
    add `and x is not null` to the expression to fail those. Use config `where:` to test a subset. -#}
{% test expression_is_true(model, expression, column_name=none) %}
select {{ '*' if should_store_failures() else '1 as failing_row' }}
from {{ model }}
{%- if column_name is none %}
where not ({{ expression }})
{%- else %}
where not ({{ column_name }} {{ expression }})
{%- endif %}
{% endtest %}
