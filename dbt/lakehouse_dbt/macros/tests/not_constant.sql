{#- dbt_utils.not_constant: the column holds more than one distinct value (per group of
    group_by_columns). A failing row is a group with exactly one; NULLs are not values. -#}
{% test not_constant(model, column_name, group_by_columns=[]) %}
select
    {%- for column in group_by_columns %}
    {{ column }},
    {%- endfor %}
    count(distinct {{ column_name }}) as filler_column
from {{ model }}
{%- if group_by_columns %}
group by {{ group_by_columns | join(', ') }}
{%- endif %}
having count(distinct {{ column_name }}) = 1
{% endtest %}
