{#- A statistical check of a daily metric: the tested business day's value of `metric` (an aggregate
    expression, e.g. 'sum(notional_usd)'), per combination of `group_by` columns, must lie within
    `threshold` standard deviations of the mean of the `window_days` previous business days that hold
    data (Saturdays, Sundays and `holidays` are left out of both).

    - The tested day is `as_of_date`, else the dbt var `data_interval_start` (what the DAG passes: the
      day the run processed, also for a backfill), else the latest business day in the model. A day
      that is not a business day is not tested.
    - Insufficient history: a group with fewer than `min_history_days` previous business days of data
      is not scored and passes (a new pipeline, a new portfolio, the first days after a gap); the
      check starts by itself once the history is there.
    - `min_relative_stddev`: the deviation used is at least this share of |mean|. A series that only
      moves in steps (a book that changes when a position rolls) has windows that barely move, where
      any ordinary change gives a huge z; 0 keeps the plain z-score. A flat history (deviation 0)
      fails on any change.
    - A group with no value on the tested day is not scored: completeness is another test's job.

    Each failing row is one group: its columns, metric_date, metric, metric_value, history_mean,
    history_stddev, deviation (the one used), z_score (NULL when the deviation is 0), history_days and
    a one-line `message` naming all of them. Portable SQL (DuckDB and Spark); the day of the week is
    the one engine-dispatched piece (lakehouse.iso_day_of_week). -#}
{% test daily_metric_zscore_within(model, metric, date_column, group_by=[], window_days=10, threshold=4,
                                   min_history_days=5, min_relative_stddev=0, holidays=[], as_of_date=none) %}
{%- set dims = [group_by] if group_by is string else (group_by or []) -%}
{%- set as_of = as_of_date if as_of_date is not none else var('data_interval_start', none) -%}
{%- if min_history_days < 2 or min_history_days > window_days -%}
  {{ exceptions.raise_compiler_error("daily_metric_zscore_within: need 2 <= min_history_days <= window_days, got "
                                     ~ min_history_days ~ " and " ~ window_days) }}
{%- endif -%}
{%- set metric_text = metric | replace("'", "''") -%}

with daily as (
    select
        {%- for column in dims %}
        {{ column }},
        {%- endfor %}
        {{ date_column }} as metric_date,
        cast({{ metric }} as double) as metric_value
    from {{ model }}
    where {{ lakehouse.iso_day_of_week(date_column) }} <= 5
    {%- if holidays %}
      and {{ date_column }} not in ({% for day in holidays %}cast('{{ day }}' as date){{ ", " if not loop.last }}{% endfor %})
    {%- endif %}
    group by {% for column in dims %}{{ column }}, {% endfor %}{{ date_column }}
),

tested_day as (
    {%- if as_of %}
    select cast('{{ as_of }}' as date) as metric_date
    {%- else %}
    select max(metric_date) as metric_date from daily
    {%- endif %}
),

-- The tested day (days_back 0) and the window_days business days before it that hold data.
days as (
    select metric_date, 0 as days_back from tested_day
    union all
    select metric_date, days_back
    from (
        select
            earlier_dates.metric_date,
            row_number() over (order by earlier_dates.metric_date desc) as days_back
        from (select distinct metric_date from daily) as earlier_dates
        where earlier_dates.metric_date < (select metric_date from tested_day)
    ) as earlier
    where days_back <= {{ window_days }}
),

scored as (
    select
        {%- for column in dims %}
        daily.{{ column }},
        {%- endfor %}
        max(case when days.days_back = 0 then daily.metric_date end) as metric_date,
        max(case when days.days_back = 0 then daily.metric_value end) as metric_value,
        count(case when days.days_back > 0 then daily.metric_value end) as history_days,
        avg(case when days.days_back > 0 then daily.metric_value end) as history_mean,
        stddev_samp(case when days.days_back > 0 then daily.metric_value end) as history_stddev
    from daily
    inner join days on daily.metric_date = days.metric_date
    {%- if dims %}
    group by {% for column in dims %}daily.{{ column }}{{ ", " if not loop.last }}{% endfor %}
    {%- endif %}
),

judged as (
    select
        scored.*,
        greatest(coalesce(history_stddev, 0), {{ min_relative_stddev }} * abs(history_mean)) as deviation
    from scored
    where metric_value is not null
      and history_days >= {{ min_history_days }}
),

failing as (
    select
        judged.*,
        case when deviation > 0 then (metric_value - history_mean) / deviation end as z_score
    from judged
    where case
        when deviation > 0 then abs(metric_value - history_mean) / deviation > {{ threshold }}
        else metric_value <> history_mean
    end
)

select
    {%- for column in dims %}
    {{ column }},
    {%- endfor %}
    metric_date,
    '{{ metric_text }}' as metric,
    metric_value,
    history_mean,
    history_stddev,
    deviation,
    z_score,
    history_days,
    concat(
        '{{ metric_text }}',
        {%- if dims %}
        ' for ',
        {%- for column in dims %}
        '{{ column }}=', coalesce(cast({{ column }} as {{ dbt.type_string() }}), 'NULL'),{{ " ', '," if not loop.last }}
        {%- endfor %}
        {%- endif %}
        ' on ', cast(metric_date as {{ dbt.type_string() }}),
        ': value ', {{ lakehouse.zscore_number_text('metric_value') }},
        ', mean ', {{ lakehouse.zscore_number_text('history_mean') }},
        ', standard deviation ', {{ lakehouse.zscore_number_text('history_stddev') }},
        {%- if min_relative_stddev %}
        ' (used ', {{ lakehouse.zscore_number_text('deviation') }}, ', at least {{ min_relative_stddev }} x |mean|)',
        {%- endif %}
        ' over the previous ', cast(history_days as {{ dbt.type_string() }}), ' business days',
        ': z = ', coalesce({{ lakehouse.zscore_number_text('z_score') }}, 'infinite (flat history)'),
        ', allowed |z| <= {{ threshold }}'
    ) as message
from failing
{% endtest %}


{#- A number as text with two decimals, the same on DuckDB and Spark (no scientific notation). -#}
{% macro zscore_number_text(expr) -%}
cast(cast(round({{ expr }}, 2) as decimal(38, 2)) as {{ dbt.type_string() }})
{%- endmacro %}
