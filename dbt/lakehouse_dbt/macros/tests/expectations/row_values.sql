{#- dbt-expectations' row-by-row checks, same names and arguments: a failing row is a row of the model
    (within `row_condition`) that breaks the expectation. A NULL value passes (not_null tests it). -#}

{% test expect_column_values_to_be_between(model, column_name, min_value=none, max_value=none, row_condition=none, strictly=false) %}
{%- if min_value is none and max_value is none -%}
  {{ exceptions.raise_compiler_error("expect_column_values_to_be_between on " ~ column_name ~ ": give min_value, max_value or both") }}
{%- endif %}
{%- set bounds = [] %}
{%- if min_value is not none %}{% do bounds.append(column_name ~ ' >' ~ ('' if strictly else '=') ~ ' ' ~ min_value) %}{% endif %}
{%- if max_value is not none %}{% do bounds.append(column_name ~ ' <' ~ ('' if strictly else '=') ~ ' ' ~ max_value) %}{% endif %}
{{ lakehouse._expect_rows(model, bounds | join(' and '), row_condition) }}
{% endtest %}

{% test expect_column_values_to_be_in_set(model, column_name, value_set, quote_values=true, row_condition=none) %}
{%- set values = [] %}
{%- for value in value_set %}{% do values.append(lakehouse.text_literal(value) if quote_values else value) %}{% endfor %}
{{ lakehouse._expect_rows(model, column_name ~ ' in (' ~ values | join(', ') ~ ')', row_condition) }}
{% endtest %}

{#- The value CONTAINS a match of `regex` (as dbt-expectations: a search, not a full match; anchor with ^ $).
    `flags`: 'i' for case-insensitive. The pattern is the engine's (RE2 on DuckDB, Java on Spark). -#}
{% test expect_column_values_to_match_regex(model, column_name, regex, row_condition=none, is_raw=false, flags="") %}
{{ lakehouse._expect_rows(model, lakehouse.contains_regex(column_name, regex, flags), row_condition) }}
{% endtest %}

{% test expect_column_values_to_not_match_regex(model, column_name, regex, row_condition=none, is_raw=false, flags="") %}
{{ lakehouse._expect_rows(model, 'not ' ~ lakehouse.contains_regex(column_name, regex, flags), row_condition) }}
{% endtest %}

{% test expect_column_pair_values_A_to_be_greater_than_B(model, column_A, column_B, or_equal=false, row_condition=none) %}
{{ lakehouse._expect_rows(model, column_A ~ (' >= ' if or_equal else ' > ') ~ column_B, row_condition) }}
{% endtest %}
