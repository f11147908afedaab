{#- dbt_date's names, forwarding to the lakehouse package (macros/compat/dbt_date.sql). -#}
{% macro get_base_dates(start_date=none, end_date=none, n_dateparts=none, datepart='day') %}{{ return(lakehouse.get_base_dates(start_date, end_date, n_dateparts, datepart)) }}{% endmacro %}
{% macro get_date_dimension(start_date, end_date) %}{{ return(lakehouse.get_date_dimension(start_date, end_date)) }}{% endmacro %}
{% macro date_spine(datepart, start_date, end_date) %}{{ return(lakehouse.date_spine(datepart, start_date, end_date)) }}{% endmacro %}
{% macro convert_timezone(column, target_tz=none, source_tz=none) %}{{ return(lakehouse.convert_timezone(column, target_tz, source_tz)) }}{% endmacro %}
{% macro now(tz=none) %}{{ return(lakehouse.now(tz)) }}{% endmacro %}
{% macro today(tz=none) %}{{ return(lakehouse.today(tz)) }}{% endmacro %}
{% macro tomorrow(date=none, tz=none) %}{{ return(lakehouse.tomorrow(date, tz)) }}{% endmacro %}
{% macro yesterday(date=none, tz=none) %}{{ return(lakehouse.yesterday(date, tz)) }}{% endmacro %}
{% macro n_days_ago(n, date=none, tz=none) %}{{ return(lakehouse.n_days_ago(n, date, tz)) }}{% endmacro %}
{% macro n_days_away(n, date=none, tz=none) %}{{ return(lakehouse.n_days_away(n, date, tz)) }}{% endmacro %}
{% macro day_of_week(date, isoweek=true) %}{{ return(lakehouse.day_of_week(date, isoweek)) }}{% endmacro %}
{% macro day_name(date, short=true) %}{{ return(lakehouse.day_name(date, short)) }}{% endmacro %}
{% macro month_name(date, short=true) %}{{ return(lakehouse.month_name(date, short)) }}{% endmacro %}
