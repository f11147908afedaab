{#- dbt_utils.equal_rowcount: the model has as many rows as compare_model (per group of
    group_by_columns). The failure count is the difference in rows. -#}
{% test equal_rowcount(model, compare_model, group_by_columns=[]) %}
{{ lakehouse._compare_rowcounts(model, compare_model, group_by_columns, 'abs(count_a - count_b)') }}
{% endtest %}

{#- dbt_utils.fewer_rows_than: the model has fewer rows than compare_model (per group). The
    failure count is how many rows too many (1 when they are as many). -#}
{% test fewer_rows_than(model, compare_model, group_by_columns=[]) %}
{{ lakehouse._compare_rowcounts(model, compare_model, group_by_columns,
       'case when count_a > count_b then count_a - count_b when count_a = count_b then 1 else 0 end') }}
{% endtest %}

{#- (internal) Row counts of two relations side by side (per group), each `delta` times: dbt counts
    the rows of a test, so the failure count is the sum of the deltas. (dbt_utils sets fail_calc
    instead; a config() in a test of a package is lost when another package has a test of the
    same name, as the dbt_utils shim does, so these tests need none.) -#}
{% macro _compare_rowcounts(model, compare_model, group_by_columns, delta) %}
{%- set keys = ['id_lakehouse_rowcount'] + group_by_columns %}
with a as (
    select {% for c in group_by_columns %}{{ c }}, {% endfor %}1 as id_lakehouse_rowcount, count(*) as count_a
    from {{ model }}
    group by {{ keys | join(', ') }}
),

b as (
    select {% for c in group_by_columns %}{{ c }}, {% endfor %}1 as id_lakehouse_rowcount, count(*) as count_b
    from {{ compare_model }}
    group by {{ keys | join(', ') }}
),

counts as (
    select
        {%- for c in keys %}
        a.{{ c }} as {{ c }}_a,
        b.{{ c }} as {{ c }}_b,
        {%- endfor %}
        coalesce(count_a, 0) as count_a,
        coalesce(count_b, 0) as count_b
    from a
    full outer join b on {% for c in keys %}a.{{ c }} = b.{{ c }}{{ ' and ' if not loop.last }}{% endfor %}
),

deltas as (
    select *, {{ delta }} as row_count_delta
    from counts
)

select *, {{ lakehouse.repeat_row('row_count_delta') }} as failing_row
from deltas
where row_count_delta > 0
{% endmacro %}
