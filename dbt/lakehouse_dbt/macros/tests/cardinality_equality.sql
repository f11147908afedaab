{#- dbt_utils.cardinality_equality: each value of the column occurs as many times as the same value
    of `field` in `to`. A failing row is a (value, count) found on one side only. -#}
{% test cardinality_equality(model, column_name, to, field) %}
with table_a as (
    select {{ column_name }}, count(*) as num_rows
    from {{ model }}
    group by {{ column_name }}
),

table_b as (
    select {{ field }}, count(*) as num_rows
    from {{ to }}
    group by {{ field }}
),

except_a as (
    select * from table_a
    {{ dbt.except() }}
    select * from table_b
),

except_b as (
    select * from table_b
    {{ dbt.except() }}
    select * from table_a
)

select * from except_a
union all
select * from except_b
{% endtest %}
