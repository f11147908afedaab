{#- Values must be > 0 where present; NULLs are left to not_null tests. -#}
{% test positive_when_not_null(model, column_name) %}
select {{ column_name }} as failing_value
from {{ model }}
where {{ column_name }} is not null and {{ column_name }} <= 0
{% endtest %}
