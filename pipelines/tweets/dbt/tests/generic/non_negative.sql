{#- Values must be >= 0 where present (counts); NULLs are left to not_null tests. -#}
{% test non_negative(model, column_name) %}
select {{ column_name }} as failing_value
from {{ model }}
where {{ column_name }} is not null and {{ column_name }} < 0
{% endtest %}
