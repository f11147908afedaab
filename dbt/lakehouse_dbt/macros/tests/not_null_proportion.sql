{#- dbt_utils.not_null_proportion: the share of non-NULL values is within [at_least, at_most] (per
    group of group_by_columns, when given). A failing row is one group, with its not_null_proportion. -#}
{% test not_null_proportion(model, column_name, at_least, at_most=1.0, group_by_columns=[]) %}
with validation as (
    select
        {%- for column in group_by_columns %}
        {{ column }},
        {%- endfor %}
        sum(case when {{ column_name }} is null then 0 else 1 end) / cast(count(*) as {{ dbt.type_numeric() }}) as not_null_proportion
    from {{ model }}
    {%- if group_by_columns %}
    group by {{ group_by_columns | join(', ') }}
    {%- endif %}
)

select *
from validation
where not_null_proportion < {{ at_least }} or not_null_proportion > {{ at_most }}
{% endtest %}
