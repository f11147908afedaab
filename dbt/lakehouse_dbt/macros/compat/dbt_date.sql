{#- dbt_date's calendar macros most projects use, same names and arguments as dbt_date 0.10+:
    replace `dbt_date.` by `lakehouse.` (or install the dbt_date shim, compat_packages/dbt_date).
    "Today" is in the time zone of var('dbt_date:time_zone'), America/Los_Angeles by default as in
    dbt_date; set the var (e.g. to UTC) in dbt_project.yml. -#}


{% macro _dbt_date_time_zone(tz) -%}
  {{- tz if tz else var('dbt_date:time_zone', 'America/Los_Angeles') -}}
{%- endmacro %}


{#- A timestamp (without time zone) read in source_tz, as the wall-clock time in target_tz. -#}
{% macro convert_timezone(column, target_tz=none, source_tz=none) %}
  {{ return(adapter.dispatch('convert_timezone', 'lakehouse')(column, lakehouse._dbt_date_time_zone(target_tz), source_tz or 'UTC')) }}
{% endmacro %}
{% macro duckdb__convert_timezone(column, target_tz, source_tz) -%}
cast(timezone('{{ target_tz }}', timezone('{{ source_tz }}', cast({{ column }} as timestamp))) as timestamp)
{%- endmacro %}
{% macro spark__convert_timezone(column, target_tz, source_tz) -%}
from_utc_timestamp(to_utc_timestamp({{ column }}, '{{ source_tz }}'), '{{ target_tz }}')
{%- endmacro %}


{#- Now, as the wall-clock time of the time zone. -#}
{% macro now(tz=none) %}
  {{ return(adapter.dispatch('now', 'lakehouse')(lakehouse._dbt_date_time_zone(tz))) }}
{% endmacro %}
{% macro duckdb__now(tz) -%}
cast(timezone('{{ tz }}', current_timestamp) as timestamp)
{%- endmacro %}
{% macro spark__now(tz) -%}
from_utc_timestamp(to_utc_timestamp(current_timestamp(), current_timezone()), '{{ tz }}')
{%- endmacro %}


{% macro today(tz=none) -%}
cast({{ lakehouse.now(tz) }} as date)
{%- endmacro %}

{% macro n_days_ago(n, date=none, tz=none) -%}
  {%- set base = 'cast(' ~ date ~ ' as date)' if date else lakehouse.today(tz) -%}
  {{- lakehouse.add_days(base, -1 * n) -}}
{%- endmacro %}

{% macro n_days_away(n, date=none, tz=none) -%}
  {{- lakehouse.n_days_ago(-1 * n, date, tz) -}}
{%- endmacro %}

{% macro yesterday(date=none, tz=none) -%}{{ lakehouse.n_days_ago(1, date, tz) }}{%- endmacro %}

{% macro tomorrow(date=none, tz=none) -%}{{ lakehouse.n_days_away(1, date, tz) }}{%- endmacro %}


{#- Day of the week: 1 = Monday .. 7 = Sunday with isoweek=true (the default), else 1 = Sunday .. 7 = Saturday. -#}
{% macro day_of_week(date, isoweek=true) -%}
  {%- if isoweek -%}
    {{- lakehouse.iso_day_of_week(date) -}}
  {%- else -%}
    (({{ lakehouse.iso_day_of_week(date) }}) % 7 + 1)
  {%- endif -%}
{%- endmacro %}

{#- English names: Monday / Mon, January / Jan. -#}
{% macro day_name(date, short=true) %}
  {{ return(adapter.dispatch('day_name', 'lakehouse')(date, short)) }}
{% endmacro %}
{% macro duckdb__day_name(date, short) -%}strftime({{ date }}, '{{ '%a' if short else '%A' }}'){%- endmacro %}
{% macro spark__day_name(date, short) -%}date_format({{ date }}, '{{ 'E' if short else 'EEEE' }}'){%- endmacro %}

{% macro month_name(date, short=true) %}
  {{ return(adapter.dispatch('month_name', 'lakehouse')(date, short)) }}
{% endmacro %}
{% macro duckdb__month_name(date, short) -%}strftime({{ date }}, '{{ '%b' if short else '%B' }}'){%- endmacro %}
{% macro spark__month_name(date, short) -%}date_format({{ date }}, '{{ 'MMM' if short else 'MMMM' }}'){%- endmacro %}


{#- One row per datepart from start_date (included) to end_date (excluded), as a timestamp column
    date_<datepart>. start_date and end_date are date TEXTS ('2026-01-01'), as in dbt_date; or,
    without them, the last n_dateparts dateparts up to and including today. -#}
{% macro get_base_dates(start_date=none, end_date=none, n_dateparts=none, datepart='day') %}
  {%- if start_date and end_date -%}
    {%- set start_expr = "cast('" ~ start_date ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- set end_expr = "cast('" ~ end_date ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
  {%- elif n_dateparts and datepart -%}
    {%- set start_expr = dbt.dateadd(datepart, -1 * n_dateparts, lakehouse.today()) -%}
    {%- set end_expr = lakehouse.tomorrow() -%}
  {%- else -%}
    {{ exceptions.raise_compiler_error("get_base_dates: give start_date and end_date, or n_dateparts and datepart") }}
  {%- endif -%}
with date_spine as (
    {{ lakehouse.date_spine(datepart, start_expr, end_expr) }}
)
select cast(d.date_{{ datepart }} as {{ dbt.type_timestamp() }}) as date_{{ datepart }}
from date_spine as d
{% endmacro %}


{#- A calendar of the days from start_date (included) to end_date (excluded), date texts: a subset of
    dbt_date.get_date_dimension's columns, with its names (see the README for the list). -#}
{% macro get_date_dimension(start_date, end_date) %}
with base_dates as (
    {{ lakehouse.get_base_dates(start_date, end_date, datepart='day') }}
),

days as (
    select cast(date_day as date) as date_day from base_dates
)

select
    date_day,
    {{ lakehouse.add_days('date_day', -1) }} as prior_date_day,
    {{ lakehouse.add_days('date_day', 1) }} as next_date_day,
    {{ lakehouse.day_of_week('date_day', isoweek=false) }} as day_of_week,
    {{ lakehouse.day_of_week('date_day', isoweek=true) }} as day_of_week_iso,
    {{ lakehouse.day_name('date_day', short=false) }} as day_of_week_name,
    {{ lakehouse.day_name('date_day', short=true) }} as day_of_week_name_short,
    dayofmonth(date_day) as day_of_month,
    dayofyear(date_day) as day_of_year,
    cast({{ dbt.date_trunc('week', 'date_day') }} as date) as iso_week_start_date,
    {{ lakehouse.add_days('cast(' ~ dbt.date_trunc('week', 'date_day') ~ ' as date)', 6) }} as iso_week_end_date,
    weekofyear(date_day) as iso_week_of_year,
    month(date_day) as month_of_year,
    {{ lakehouse.month_name('date_day', short=false) }} as month_name,
    {{ lakehouse.month_name('date_day', short=true) }} as month_name_short,
    cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
    {{ lakehouse.add_days('cast(' ~ dbt.dateadd('month', 1, dbt.date_trunc('month', 'date_day')) ~ ' as date)', -1) }} as month_end_date,
    quarter(date_day) as quarter_of_year,
    cast({{ dbt.date_trunc('quarter', 'date_day') }} as date) as quarter_start_date,
    {{ lakehouse.add_days('cast(' ~ dbt.dateadd('month', 3, dbt.date_trunc('quarter', 'date_day')) ~ ' as date)', -1) }} as quarter_end_date,
    year(date_day) as year_number,
    cast({{ dbt.date_trunc('year', 'date_day') }} as date) as year_start_date,
    {{ lakehouse.add_days('cast(' ~ dbt.dateadd('year', 1, dbt.date_trunc('year', 'date_day')) ~ ' as date)', -1) }} as year_end_date
from days
{% endmacro %}
