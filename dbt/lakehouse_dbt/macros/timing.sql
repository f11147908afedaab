{#- on-run-end: one log line per node with its status and time, slowest first. -#}
{% macro log_run_timing(results) %}
  {%- if execute -%}
    {%- for result in results | sort(attribute='execution_time', reverse=True) -%}
      {%- do log("timing " ~ result.node.unique_id ~ " " ~ result.status ~ " " ~ '%.3f' | format(result.execution_time) ~ "s", info=True) -%}
    {%- endfor -%}
  {%- endif -%}
{% endmacro %}
