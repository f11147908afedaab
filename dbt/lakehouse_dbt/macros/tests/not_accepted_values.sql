{#- dbt_utils.not_accepted_values: no value of the column is one of `values` (quote=false: they are
    SQL expressions, e.g. numbers). A failing row is one distinct forbidden value. -#}
{% test not_accepted_values(model, column_name, values, quote=true) %}
select distinct {{ column_name }} as value_field
from {{ model }}
where {{ column_name }} in (
    {%- for value in values -%}
    {{ "'" ~ dbt.escape_single_quotes(value | string) ~ "'" if quote else value }}{{ ', ' if not loop.last }}
    {%- endfor -%}
)
{% endtest %}
