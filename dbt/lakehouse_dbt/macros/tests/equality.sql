{#- dbt_utils.equality: the model and compare_model hold the same rows (as sets: EXCEPT both ways)
    over compare_columns (default: every column of the model), less exclude_columns; numeric
    columns rounded to `precision` places when given. A failing row is a row found on one side only,
    with which_diff 'a_minus_b' (in the model only) or 'b_minus_a'. -#}
{% test equality(model, compare_model, compare_columns=none, exclude_columns=none, precision=none) %}
{%- if not execute -%}{{ return('select 1 as which_diff limit 0') }}{%- endif -%}
{%- set excluded = (exclude_columns or []) | map('lower') | list -%}
{%- set wanted = compare_columns | map('lower') | list if compare_columns else none -%}
{%- set columns = [] -%}
{%- if model is mapping -%}
  {#- The model's columns, from the database, in its order. -#}
  {%- for column in adapter.get_columns_in_relation(model)
        if column.name | lower not in excluded and (wanted is none or column.name | lower in wanted) -%}
    {%- set name = adapter.quote(column.name) -%}
    {#- (DuckDB's columns say is_numeric() false for DECIMAL(p,s): read the type name.) -#}
    {%- set rounded = precision is not none and lakehouse.json_type_family(column.data_type).family in ['decimal', 'float'] -%}
    {%- do columns.append('round(' ~ name ~ ', ' ~ precision ~ ') as ' ~ name if rounded else name) -%}
  {%- endfor -%}
{%- elif compare_columns and precision is none -%}
  {#- With config where, the model is a subquery: compare the columns given. -#}
  {%- for name in compare_columns if name | lower not in excluded -%}{%- do columns.append(name) -%}{%- endfor -%}
{%- else -%}
  {{ exceptions.raise_compiler_error("equality with config where: give compare_columns (and no precision)") }}
{%- endif -%}
{%- if not columns -%}
  {{ exceptions.raise_compiler_error("equality: no columns to compare in " ~ model ~ " (does it exist yet?)") }}
{%- endif %}
with a as (
    select {{ columns | join(', ') }} from {{ model }}
),

b as (
    select {{ columns | join(', ') }} from {{ compare_model }}
),

a_minus_b as (
    select * from a
    {{ dbt.except() }}
    select * from b
),

b_minus_a as (
    select * from b
    {{ dbt.except() }}
    select * from a
)

select 'a_minus_b' as which_diff, a_minus_b.* from a_minus_b
union all
select 'b_minus_a' as which_diff, b_minus_a.* from b_minus_a
{% endtest %}
