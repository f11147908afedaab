{#- The grain test: no two rows share the combination of columns (dbt_utils'
    unique_combination_of_columns; quote_columns=true quotes each name). -#}
{% test unique_combination_of_columns(model, combination_of_columns, quote_columns=false) %}
{%- set columns = [] -%}
{%- for column in combination_of_columns -%}{%- do columns.append(adapter.quote(column) if quote_columns else column) -%}{%- endfor %}
select {{ columns | join(', ') }}, count(*) as duplicate_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
