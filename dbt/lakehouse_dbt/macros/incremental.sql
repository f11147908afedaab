{#- Restrict an incremental run to the DAG run's data interval (dbt vars data_interval_start and
    data_interval_end, rendered by Airflow at run time). A first run, a --full-refresh, or a plain
    `dbt build` without the vars processes everything, so no history is ever collapsed. -#}
{% macro interval_filter(column) %}
  {%- set start = var('data_interval_start', none) -%}
  {%- set end = var('data_interval_end', none) -%}
  {%- if is_incremental() and start and end -%}
    {{ column }} >= cast('{{ start[:10] }}' as date) and {{ column }} < cast('{{ end[:10] }}' as date)
  {%- else -%}
    1 = 1
  {%- endif -%}
{% endmacro %}
