{#- The only engine-specific SQL of the pipelines: each macro dispatches per adapter, so model SQL
    runs unchanged on DuckDB and on Spark. -#}

{% macro add_days(date_expr, days_expr) %}
  {{ return(adapter.dispatch('add_days', 'lakehouse')(date_expr, days_expr)) }}
{% endmacro %}
{% macro duckdb__add_days(date_expr, days_expr) %}cast(({{ date_expr }}) + cast({{ days_expr }} as integer) as date){% endmacro %}
{% macro spark__add_days(date_expr, days_expr) %}date_add({{ date_expr }}, cast({{ days_expr }} as int)){% endmacro %}

{% macro days_between(start_expr, end_expr) %}
  {{ return(adapter.dispatch('days_between', 'lakehouse')(start_expr, end_expr)) }}
{% endmacro %}
{% macro duckdb__days_between(start_expr, end_expr) %}cast(date_diff('day', {{ start_expr }}, {{ end_expr }}) as integer){% endmacro %}
{% macro spark__days_between(start_expr, end_expr) %}datediff({{ end_expr }}, {{ start_expr }}){% endmacro %}

{% macro matches_regex(expr, pattern) %}
  {{ return(adapter.dispatch('matches_regex', 'lakehouse')(expr, pattern)) }}
{% endmacro %}
{% macro duckdb__matches_regex(expr, pattern) %}coalesce(regexp_full_match({{ expr }}, '{{ pattern }}'), false){% endmacro %}
{% macro spark__matches_regex(expr, pattern) %}coalesce({{ expr }} rlike '^(?:{{ pattern }})$', false){% endmacro %}

{#- A relation of one integer column holding start..end inclusive, e.g. forecast day offsets. -#}
{% macro integer_series(start, end, column_name) %}
  {{ return(adapter.dispatch('integer_series', 'lakehouse')(start, end, column_name)) }}
{% endmacro %}
{% macro duckdb__integer_series(start, end, column_name) %}select cast(unnest(range({{ start }}, {{ end }} + 1)) as integer) as {{ column_name }}{% endmacro %}
{% macro spark__integer_series(start, end, column_name) %}select explode(sequence({{ start }}, {{ end }})) as {{ column_name }}{% endmacro %}

{#- ISO day of the week of a date: 1 = Monday ... 7 = Sunday (business-day calendars skip 6 and 7). -#}
{% macro iso_day_of_week(date_expr) %}
  {{ return(adapter.dispatch('iso_day_of_week', 'lakehouse')(date_expr)) }}
{% endmacro %}
{% macro duckdb__iso_day_of_week(date_expr) %}isodow({{ date_expr }}){% endmacro %}
{% macro spark__iso_day_of_week(date_expr) %}(weekday({{ date_expr }}) + 1){% endmacro %}

{#- A select-list expression that repeats its row `times` times (a positive integer expression),
    numbering the copies: `select *, {{ lakehouse.repeat_row('n') }} as copy from t`. -#}
{% macro repeat_row(times) %}
  {{ return(adapter.dispatch('repeat_row', 'lakehouse')(times)) }}
{% endmacro %}
{% macro duckdb__repeat_row(times) %}unnest(range(1, cast({{ times }} as bigint) + 1)){% endmacro %}
{% macro spark__repeat_row(times) %}explode(sequence(1, cast({{ times }} as bigint))){% endmacro %}

{#- A string as an SQL literal, quotes (and on Spark backslashes, which its literals unescape) escaped. -#}
{% macro text_literal(value) %}
  {{ return(adapter.dispatch('text_literal', 'lakehouse')(value)) }}
{% endmacro %}
{% macro default__text_literal(value) %}'{{ (value | string).replace("'", "''") }}'{% endmacro %}
{% macro spark__text_literal(value) %}'{{ (value | string).replace("\\", "\\\\").replace("'", "\\'") }}'{% endmacro %}

{#- `expr` contains a match of `pattern` (a search, not a full match); flags 'i': case-insensitive.
    NULL for a NULL value. -#}
{% macro contains_regex(expr, pattern, flags="") %}
  {{ return(adapter.dispatch('contains_regex', 'lakehouse')(expr, pattern, flags)) }}
{% endmacro %}
{% macro duckdb__contains_regex(expr, pattern, flags) %}regexp_matches({{ expr }}, {{ lakehouse.text_literal(pattern) }}{{ ', ' ~ lakehouse.text_literal(flags) if flags }}){% endmacro %}
{% macro spark__contains_regex(expr, pattern, flags) %}{{ expr }} rlike {{ lakehouse.text_literal(('(?' ~ flags ~ ')' if flags else '') ~ pattern) }}{% endmacro %}

{#- The `q` quantile of `expr`, interpolated linearly between values. -#}
{% macro quantile_cont(expr, q) %}
  {{ return(adapter.dispatch('quantile_cont', 'lakehouse')(expr, q)) }}
{% endmacro %}
{% macro duckdb__quantile_cont(expr, q) %}quantile_cont({{ expr }}, {{ q }}){% endmacro %}
{% macro spark__quantile_cont(expr, q) %}percentile({{ expr }}, {{ q }}){% endmacro %}

{#- Now minus `interval` `datepart`s, as a timestamp. `ts - interval N unit` reads the same on DuckDB
    and Spark; dbt.dateadd on dbt-spark 1.11 gives NULL for it (tests/spark found it: a recency check
    that compares with NULL always passes). -#}
{% macro timestamp_ago(datepart, interval) %}
{%- if datepart not in ['second', 'minute', 'hour', 'day', 'week', 'month', 'year'] or not (interval is number) -%}
  {{ exceptions.raise_compiler_error("datepart is one of second, minute, hour, day, week, month, year and interval a number; got " ~ datepart ~ ", " ~ interval) }}
{%- endif -%}
cast({{ dbt.current_timestamp() }} - interval {{ interval }} {{ datepart }} as {{ dbt.type_timestamp() }})
{%- endmacro %}
