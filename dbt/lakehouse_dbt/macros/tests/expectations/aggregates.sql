{#- dbt-expectations' aggregate checks, same names and arguments: a failing row is a group (of
    `group_by`; the whole model without) whose aggregate is outside the bounds. -#}

{% test expect_table_row_count_to_be_between(model, min_value=none, max_value=none, group_by=none, row_condition=none, strictly=false) %}
{{ lakehouse._expect_aggregate_between(model, 'count(*)', min_value, max_value, group_by, row_condition, strictly) }}
{% endtest %}

{% test expect_column_mean_to_be_between(model, column_name, min_value=none, max_value=none, group_by=none, row_condition=none, strictly=false) %}
{{ lakehouse._expect_aggregate_between(model, 'avg(' ~ column_name ~ ')', min_value, max_value, group_by, row_condition, strictly) }}
{% endtest %}

{#- `quantile` in [0, 1], interpolated linearly between values on both engines. -#}
{% test expect_column_quantile_values_to_be_between(model, column_name, quantile, min_value=none, max_value=none, group_by=none, row_condition=none, strictly=false) %}
{%- if not (0 <= quantile <= 1) -%}
  {{ exceptions.raise_compiler_error("expect_column_quantile_values_to_be_between on " ~ column_name ~ ": quantile must be within [0, 1], got " ~ quantile) }}
{%- endif %}
{{ lakehouse._expect_aggregate_between(model, lakehouse.quantile_cont(column_name, quantile), min_value, max_value, group_by, row_condition, strictly) }}
{% endtest %}

{#- Distinct non-NULL values over non-NULL values. -#}
{% test expect_column_proportion_of_unique_values_to_be_between(model, column_name, min_value=none, max_value=none, group_by=none, row_condition=none, strictly=false) %}
{{ lakehouse._expect_aggregate_between(model, 'cast(count(distinct ' ~ column_name ~ ') as double) / nullif(count(' ~ column_name ~ '), 0)', min_value, max_value, group_by, row_condition, strictly) }}
{% endtest %}

{% test expect_column_distinct_count_to_equal(model, column_name, value, group_by=none, row_condition=none) %}
{{ lakehouse._expect_aggregate_between(model, 'count(distinct ' ~ column_name ~ ')', value, value, group_by, row_condition, false) }}
{% endtest %}

{% test expect_column_distinct_count_to_be_greater_than(model, column_name, value, group_by=none, row_condition=none) %}
{{ lakehouse._expect_aggregate_between(model, 'count(distinct ' ~ column_name ~ ')', value, none, group_by, row_condition, true) }}
{% endtest %}

{#- The latest `column_name` (within row_condition) is newer than `interval` `datepart`s ago. Unlike the
    other aggregates, an empty model fails: no data is not recent data (as in dbt-expectations). -#}
{% test expect_row_values_to_have_recent_data(model, column_name, datepart, interval, row_condition=none) %}
{%- set threshold = lakehouse.timestamp_ago(datepart, interval) %}
with latest as (
    select max(cast({{ column_name }} as {{ dbt.type_timestamp() }})) as most_recent
    from {{ model }}
    {%- if row_condition %}
    where {{ row_condition }}
    {%- endif %}
)

select most_recent, {{ threshold }} as threshold
from latest
where most_recent is null or most_recent < {{ threshold }}
{% endtest %}
