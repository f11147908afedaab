{#- dbt_utils.recency: the latest `field` is within `interval` `datepart`s (day, hour, ...) of now
    (ignore_time_component: compared as dates). Fails (one row per group of group_by_columns, with
    most_recent and threshold) when older, or when there is no value at all (an empty model). -#}
{% test recency(model, field, datepart, interval, ignore_time_component=false, group_by_columns=[]) %}
{%- set threshold = lakehouse.timestamp_ago(datepart, interval) %}
{%- set threshold = 'cast(' ~ threshold ~ ' as date)' if ignore_time_component else threshold %}
with recency as (
    select
        {%- for column in group_by_columns %}
        {{ column }},
        {%- endfor %}
        {%- if ignore_time_component %}
        cast(max({{ field }}) as date) as most_recent
        {%- else %}
        max({{ field }}) as most_recent
        {%- endif %}
    from {{ model }}
    {%- if group_by_columns %}
    group by {{ group_by_columns | join(', ') }}
    {%- endif %}
)

select
    {%- for column in group_by_columns %}
    {{ column }},
    {%- endfor %}
    most_recent,
    {{ threshold }} as threshold
from recency
where most_recent < {{ threshold }} or most_recent is null
{% endtest %}
