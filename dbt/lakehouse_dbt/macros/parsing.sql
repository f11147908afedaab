{#- Strict parsing of raw text: a value either matches the format exactly or is NULL, so staging
    can name the reason a row is rejected instead of casting bad input to a silent NULL. -#}

{% macro is_blank(expr) %}({{ expr }} is null or trim({{ expr }}) = ''){% endmacro %}

{% macro is_integer_text(expr) %}{{ lakehouse.matches_regex(expr, '-?[0-9]+') }}{% endmacro %}

{% macro is_decimal_text(expr) %}{{ lakehouse.matches_regex(expr, '-?[0-9]+([.][0-9]+)?') }}{% endmacro %}

{% macro parse_date(expr) %}case when {{ lakehouse.matches_regex(expr, '[0-9]{4}-[0-9]{2}-[0-9]{2}') }} then try_cast({{ expr }} as date) end{% endmacro %}

{% macro cents_to_units(cents_expr, scale=2) %}cast(cast({{ cents_expr }} as decimal(20, 0)) / {{ 10 ** scale }} as decimal(18, {{ scale }})){% endmacro %}
