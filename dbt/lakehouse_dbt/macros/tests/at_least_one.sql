{#- dbt_utils.at_least_one: the column has at least one non-NULL value (in every group of
    group_by_columns). A failing row is a group without one (an empty model fails). -#}
{% test at_least_one(model, column_name, group_by_columns=[]) %}
{%- if group_by_columns %}
select
    {%- for column in group_by_columns %}
    {{ column }},
    {%- endfor %}
    count({{ column_name }}) as filler_column
from {{ model }}
group by {{ group_by_columns | join(', ') }}
having count({{ column_name }}) = 0
{%- else %}
select count({{ column_name }}) as filler_column
from (
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} is not null
    limit 1
) as pruned_rows
having count({{ column_name }}) = 0
{%- endif %}
{% endtest %}
