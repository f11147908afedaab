{#- dbt_utils.sequential_values: each value (in order, per group) is the previous one plus
    `interval` (of `datepart`s for dates and timestamps). A failing row is a value that is not. -#}
{% test sequential_values(model, column_name, interval=1, datepart=none, group_by_columns=[]) %}
{%- set previous = 'previous_' ~ lakehouse.slugify(column_name) %}
with windowed as (
    select
        {%- for column in group_by_columns %}
        {{ column }},
        {%- endfor %}
        {{ column_name }},
        lag({{ column_name }}) over (
            {%- if group_by_columns %} partition by {{ group_by_columns | join(', ') }}{% endif %}
            order by {{ column_name }}
        ) as {{ previous }}
    from {{ model }}
)

select *
from windowed
{%- if datepart %}
where not (cast({{ column_name }} as {{ dbt.type_timestamp() }}) = cast({{ dbt.dateadd(datepart, interval, previous) }} as {{ dbt.type_timestamp() }}))
{%- else %}
where not ({{ column_name }} = {{ previous }} + {{ interval }})
{%- endif %}
{% endtest %}
