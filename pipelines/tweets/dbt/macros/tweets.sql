{#- Time of a tweet in UTC, whatever the engine's session time zone (DuckDB's and Spark's casts and
    truncations of a timestamp with time zone follow the session's zone). -#}

{% macro utc_date(ts) %}{{ return(adapter.dispatch('utc_date')(ts)) }}{% endmacro %}
{% macro duckdb__utc_date(ts) %}cast(timezone('UTC', {{ ts }}) as date){% endmacro %}
{% macro spark__utc_date(ts) %}to_date(to_utc_timestamp({{ ts }}, current_timezone())){% endmacro %}

{#- The start of the UTC hour, as a timestamp with time zone. -#}
{% macro utc_hour_start(ts) %}{{ return(adapter.dispatch('utc_hour_start')(ts)) }}{% endmacro %}
{% macro duckdb__utc_hour_start(ts) %}timezone('UTC', date_trunc('hour', timezone('UTC', {{ ts }}))){% endmacro %}
{% macro spark__utc_hour_start(ts) %}from_utc_timestamp(date_trunc('HOUR', to_utc_timestamp({{ ts }}, current_timezone())), current_timezone()){% endmacro %}

{% macro utc_hour_of_day(ts) %}{{ return(adapter.dispatch('utc_hour_of_day')(ts)) }}{% endmacro %}
{% macro duckdb__utc_hour_of_day(ts) %}cast(hour(timezone('UTC', {{ ts }})) as integer){% endmacro %}
{% macro spark__utc_hour_of_day(ts) %}cast(hour(to_utc_timestamp({{ ts }}, current_timezone())) as int){% endmacro %}

{#- The staged tweets of every UTC day that this run's files touched (every day on a full build):
    a mart recomputes those days whole, from every file, so a tweet that arrives late or is
    re-exported in a later day's file is counted once, on its own day. -#}
{% macro tweets_of_touched_days() %}
    select * from {{ ref('stg_tweets') }}
    where created_date in (
        select distinct created_date from {{ ref('stg_tweets') }}
        where {{ lakehouse.interval_filter('_batch_date') }}
    )
{% endmacro %}
