{#- (internal) The shared shape of dbt-expectations' aggregate checks: `expression` (an aggregate)
    computed per group of `group_by` (the whole model without), over the rows of `row_condition`;
    a failing row is a group whose value is outside [min_value, max_value] (strictly: the open
    interval). As in dbt-expectations, a NULL value (no rows to aggregate) passes. -#}
{% macro _expect_aggregate_between(model, expression, min_value, max_value, group_by, row_condition, strictly) %}
{%- if min_value is none and max_value is none -%}
  {{ exceptions.raise_compiler_error("give min_value, max_value or both") }}
{%- endif %}
{%- set group_by = group_by or [] %}
with grouped as (
    select
        {%- for column in group_by %}
        {{ column }},
        {%- endfor %}
        {{ expression }} as expression_value
    from {{ model }}
    {%- if row_condition %}
    where {{ row_condition }}
    {%- endif %}
    {%- if group_by %}
    group by {{ group_by | join(', ') }}
    {%- endif %}
)

select *
from grouped
where 1 = 2
{%- if min_value is not none %}
    or expression_value <{{ '=' if strictly }} {{ min_value }}
{%- endif %}
{%- if max_value is not none %}
    or expression_value >{{ '=' if strictly }} {{ max_value }}
{%- endif %}
{% endmacro %}

{#- (internal) The rows of `model` (within row_condition) where `condition` is false; NULL is not false. -#}
{% macro _expect_rows(model, condition, row_condition) %}
select *
from {{ model }}
where not ({{ condition }})
{%- if row_condition %}
    and ({{ row_condition }})
{%- endif %}
{% endmacro %}
