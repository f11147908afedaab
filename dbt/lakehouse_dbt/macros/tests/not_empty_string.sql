{#- dbt_utils.not_empty_string: no value is '' (after trimming, with trim_whitespace=true, the
    default). A failing row is one empty value; NULLs pass. -#}
{% test not_empty_string(model, column_name, trim_whitespace=true) %}
select {{ column_name }}
from {{ model }}
where {{ 'trim(' ~ column_name ~ ')' if trim_whitespace else column_name }} = ''
{% endtest %}
