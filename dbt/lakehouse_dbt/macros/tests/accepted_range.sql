{#- dbt_utils.accepted_range: values within [min_value, max_value] (either bound optional; strict
    with inclusive=false). A failing row is one out of the range; NULLs pass (not_null tests them). -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
{%- if min_value is none and max_value is none -%}
  {{ exceptions.raise_compiler_error("accepted_range on " ~ column_name ~ ": give min_value, max_value or both") }}
{%- endif %}
select *
from {{ model }}
where 1 = 2
{%- if min_value is not none %}
    or not {{ column_name }} >{{ '=' if inclusive }} {{ min_value }}
{%- endif %}
{%- if max_value is not none %}
    or not {{ column_name }} <{{ '=' if inclusive }} {{ max_value }}
{%- endif %}
{% endtest %}
