{#- JSON text in, typed values out: the engine-specific pieces of reading change events (row images
    as JSON text), dispatched per adapter so model SQL stays the same on DuckDB and Spark.

    Strict like parsing.sql: json_value_fits() says whether a field's value can be read as a type
    EXACTLY (no rounding, no truncation, no silent NULL); json_value() reads it. A model rejects the
    rows that do not fit (with the reason) and casts only the ones that do.

      case when not {{ lakehouse.json_value_fits('raw_data', 'amount', 'decimal(14,2)') }}
           then 'uncastable amount' end                                   -- the rejection reason
      {{ lakehouse.json_value('raw_data', 'amount', 'decimal(14,2)') }} as amount   -- the typed value

    Numbers: both engines parse JSON numbers as doubles, which are exact to 15 significant digits;
    a number with more digits does not fit a decimal (it could not be read back exactly). PostgreSQL's
    numeric(p, s) columns up to 15 digits (orders: numeric(12,2) and (14,2)) are read exactly.
    Field names are plain identifiers ([a-z_][a-z0-9_]*), as PostgreSQL column names usually are.
-#}

{#- The field's value as text: strings unquoted, numbers and booleans as written by the engine's
    JSON parser, objects and arrays as JSON text; NULL when the field is absent or JSON null, and
    when the text is not JSON at all (as Spark's get_json_object: a malformed row must cost its own
    row, never the run, even where the engine evaluates this before the check that rejects it, as
    DuckDB does when it folds constants, e.g. a unit test's fixture rows). -#}
{% macro json_text(json_expr, field) %}
  {{- return(adapter.dispatch('json_text', 'lakehouse')(json_expr, field)) -}}
{% endmacro %}
{% macro duckdb__json_text(json_expr, field) %}try(json_extract_string({{ json_expr }}, '$."{{ field }}"')){% endmacro %}
{% macro spark__json_text(json_expr, field) %}get_json_object({{ json_expr }}, '$.{{ field }}'){% endmacro %}

{#- True when the text is a JSON object ('{...}'); false for NULL, malformed JSON, arrays and scalars. -#}
{% macro json_is_object(json_expr) %}
  {{- return(adapter.dispatch('json_is_object', 'lakehouse')(json_expr)) -}}
{% endmacro %}
{% macro duckdb__json_is_object(json_expr) %}coalesce(case when json_valid({{ json_expr }}) then json_type({{ json_expr }}) = 'OBJECT' end, false){% endmacro %}
{% macro spark__json_is_object(json_expr) %}coalesce(json_object_keys({{ json_expr }}) is not null, false){% endmacro %}

{#- A relation of every top-level field of every object in `relation_sql` (a subquery or table):
    (<order_column>, field_name, field_index (1-based, as written), field_kind, field_text), where
    field_kind is one of integer, number, string, boolean, null, object, array. What infers the type
    of a column seen for the first time (lakehouse.json_infer_columns). -#}
{% macro json_fields(relation_sql, json_column, order_column) %}
  {{- return(adapter.dispatch('json_fields', 'lakehouse')(relation_sql, json_column, order_column)) -}}
{% endmacro %}
{% macro duckdb__json_fields(relation_sql, json_column, order_column) %}
select
    {{ order_column }},
    field_name,
    field_index,
    case json_type(json_doc, '$."' || field_name || '"')
        when 'UBIGINT' then 'integer' when 'BIGINT' then 'integer' when 'DOUBLE' then 'number'
        when 'HUGEINT' then 'integer' when 'VARCHAR' then 'string' when 'BOOLEAN' then 'boolean'
        when 'NULL' then 'null' when 'OBJECT' then 'object' when 'ARRAY' then 'array'
    end as field_kind,
    json_extract_string(json_doc, '$."' || field_name || '"') as field_text
from (
    select
        {{ order_column }},
        {{ json_column }} as json_doc,
        unnest(json_keys({{ json_column }})) as field_name,
        generate_subscripts(json_keys({{ json_column }}), 1) as field_index
    from ({{ relation_sql }}) as documents
    where {{ lakehouse.json_is_object(json_column) }}
) as fields
{% endmacro %}
{% macro spark__json_fields(relation_sql, json_column, order_column) %}
{#- get_json_object loses the JSON kind of a scalar ("5" and 5 read alike): kinds come from the text. -#}
select
    {{ order_column }},
    field_name,
    field_index + 1 as field_index,
    case
        when field_text is null then 'null'
        when field_text rlike '^-?[0-9]+$' then 'integer'
        when field_text rlike '^-?[0-9]+([.][0-9]+)?([eE][+-]?[0-9]+)?$' then 'number'
        when field_text in ('true', 'false') then 'boolean'
        when field_text rlike '^[{]' then 'object'
        when field_text rlike '^\\[' then 'array'
        else 'string'
    end as field_kind,
    field_text
from (
    select {{ order_column }}, field_index, field_name, get_json_object(json_doc, concat('$.', field_name)) as field_text
    from (
        select {{ order_column }}, {{ json_column }} as json_doc,
               posexplode(json_object_keys({{ json_column }})) as (field_index, field_name)
        from ({{ relation_sql }}) as documents
    ) as exploded
) as fields
{% endmacro %}

{#- try_cast: NULL instead of an error (Spark >= 3.2 has it too). -#}
{% macro safe_cast(expr, data_type) %}
  {{- return(adapter.dispatch('safe_cast', 'lakehouse')(expr, data_type)) -}}
{% endmacro %}
{% macro default__safe_cast(expr, data_type) %}try_cast({{ expr }} as {{ data_type }}){% endmacro %}


{#- The family of a SQL type name, and its precision and scale for decimals: the type names of both
    engines and of PostgreSQL map to the same families (Spark runs with spark.sql.timestampType
    TIMESTAMP_NTZ, so `timestamp` is a local date-time there too and timestamp_ltz the instant). -#}
{% macro json_type_family(data_type) %}
  {%- set t = data_type | lower | trim -%}
  {%- set base = t.split('(')[0] | trim -%}
  {%- if base in ['decimal', 'numeric'] -%}
    {%- set args = t.split('(')[1].rstrip(')').split(',') if '(' in t else ['18', '3'] -%}
    {{ return({'family': 'decimal', 'precision': args[0] | trim | int, 'scale': (args[1] if args | length > 1 else '0') | trim | int}) }}
  {%- elif base in ['tinyint', 'smallint', 'integer', 'int', 'bigint', 'long', 'hugeint', 'int2', 'int4', 'int8', 'short', 'byte'] -%}
    {{ return({'family': 'integer'}) }}
  {%- elif base in ['double', 'float', 'real', 'float4', 'float8', 'double precision'] -%}
    {{ return({'family': 'float'}) }}
  {%- elif base in ['boolean', 'bool'] -%}
    {{ return({'family': 'boolean'}) }}
  {%- elif base == 'date' -%}
    {{ return({'family': 'date'}) }}
  {%- elif base in ['timestamptz', 'timestamp with time zone', 'timestamp_ltz'] -%}
    {{ return({'family': 'timestamptz'}) }}
  {%- elif base in ['timestamp', 'timestamp without time zone', 'timestamp_ntz', 'datetime'] -%}
    {{ return({'family': 'timestamp'}) }}
  {%- elif base in ['varchar', 'text', 'string', 'char', 'character', 'character varying', 'bpchar', 'json', 'uuid'] -%}
    {{ return({'family': 'text'}) }}
  {%- else -%}
    {{ return({'family': 'other'}) }}
  {%- endif -%}
{% endmacro %}


{#- (internal) The text forms json_value_fits accepts for dates and timestamps. -#}
{% macro _json_patterns() %}
  {%- set timestamp = '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?' -%}
  {{ return({'date': '[0-9]{4}-[0-9]{2}-[0-9]{2}', 'timestamp': timestamp,
             'timestamptz': timestamp ~ '([+-][0-9]{2}(:?[0-9]{2})?|Z)'}) }}
{% endmacro %}


{#- True when the field is absent or null, or its value reads as `data_type` exactly. -#}
{% macro json_value_fits(json_expr, field, data_type) %}
  {%- set text = lakehouse.json_text(json_expr, field) -%}
  {%- set kind = lakehouse.json_type_family(data_type) -%}
  {%- set patterns = lakehouse._json_patterns() -%}
  {%- set cast_ok = lakehouse.safe_cast(text, data_type) ~ ' is not null' -%}
  {%- if kind.family == 'text' -%}
    true
  {%- elif kind.family == 'decimal' -%}
    {%- set whole = [kind.precision - kind.scale, 1] | max -%}
    {%- set fraction = '([.][0-9]{1,' ~ kind.scale ~ '})?' if kind.scale > 0 else '([.]0+)?' -%}
    {#- At most `scale` places (no rounding), at most 15 digits (exact through a double). -#}
    ({{ text }} is null or ({{ lakehouse.matches_regex(text, '-?[0-9]{1,' ~ whole ~ '}' ~ fraction) }}
        and length(replace(replace({{ text }}, '-', ''), '.', '')) <= 15
        and {{ cast_ok }}))
  {%- elif kind.family == 'integer' -%}
    ({{ text }} is null or ({{ lakehouse.matches_regex(text, '-?[0-9]+') }} and {{ cast_ok }}))
  {%- elif kind.family == 'float' -%}
    ({{ text }} is null or ({{ lakehouse.matches_regex(text, '-?[0-9]+([.][0-9]+)?([eE][+-]?[0-9]+)?') }} and {{ cast_ok }}))
  {%- elif kind.family == 'boolean' -%}
    ({{ text }} is null or {{ text }} in ('true', 'false'))
  {%- elif kind.family in ['date', 'timestamp', 'timestamptz'] -%}
    {#- An instant needs its offset: a local time without one would be read in the session's zone. -#}
    ({{ text }} is null or ({{ lakehouse.matches_regex(text, patterns[kind.family]) }} and {{ cast_ok }}))
  {%- else -%}
    ({{ text }} is null or {{ cast_ok }})
  {%- endif -%}
{% endmacro %}


{#- The field's value as `data_type`; only meaningful where json_value_fits() is true. -#}
{% macro json_value(json_expr, field, data_type) %}
  {%- set text = lakehouse.json_text(json_expr, field) -%}
  {%- if lakehouse.json_type_family(data_type).family == 'text' -%}
    cast({{ text }} as {{ data_type }})
  {%- else -%}
    {{ lakehouse.safe_cast(text, data_type) }}
  {%- endif -%}
{% endmacro %}


{#- The columns first seen in a JSON column, typed from their values: [(name, type)] in order of
    appearance (the first document that has them, then their place in it). Runs a query, so only
    at execution time; `known` names are skipped, and so is a field whose values are all null so far
    (it is typed when its first value arrives: until then its rows hold NULL, which is what they had).
    A field's values decide its type: all integers -> bigint; numbers -> decimal(38, s) with s the
    most decimal places seen, at least 9; all booleans
    -> boolean; strings that are all timestamps with an offset -> timestamp with time zone, all
    timestamps -> timestamp, all dates -> date; anything else (mixed kinds, other strings, objects,
    arrays) -> the engine's text type. To pin another type, declare the column in the model's YAML. -#}
{% macro json_infer_columns(relation_sql, json_column, order_column, known=[]) %}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set spark = target.type == 'spark' -%}
  {%- set patterns = lakehouse._json_patterns() -%}
  {%- set known_lower = known | map('lower') | list -%}
  {%- set profile_sql -%}
    with fields as (
        {{ lakehouse.json_fields(relation_sql, json_column, order_column) }}
    )
    select
        field_name,
        min({{ order_column }}) as first_seen,
        min(field_index) as field_index,
        sum(case when field_kind <> 'null' then 1 else 0 end) as non_null,
        sum(case when field_kind not in ('null', 'integer') then 1 else 0 end) as not_integer,
        sum(case when field_kind not in ('null', 'integer', 'number') then 1 else 0 end) as not_number,
        sum(case when field_kind not in ('null', 'boolean') then 1 else 0 end) as not_boolean,
        {%- for family in ['timestamptz', 'timestamp', 'date'] %}
        sum(case
            when field_kind = 'null' then 0
            when field_kind = 'string' and {{ lakehouse.matches_regex('field_text', patterns[family]) }} then 0
            else 1
        end) as not_{{ family }},
        {%- endfor %}
        max(case
            when field_kind = 'number' and instr(field_text, '.') > 0 then length(field_text) - instr(field_text, '.')
            else 0
        end) as max_scale
    from fields
    group by field_name
    order by first_seen, field_index
  {%- endset -%}
  {%- set found = [] -%}
  {%- for row in run_query(profile_sql).rows -%}
    {%- set name = row['field_name'] -%}
    {%- if name | lower in known_lower or row['non_null'] == 0 -%}
      {#- known, or no value yet -#}
    {%- elif not modules.re.fullmatch('[a-z_][a-z0-9_]*', name) -%}
      {%- do exceptions.warn("json_infer_columns: field '" ~ name ~ "' is not a plain lower-case identifier;"
                             ~ " it is not added as a column") -%}
    {%- else -%}
      {%- if row['not_integer'] == 0 -%}{%- set data_type = 'bigint' -%}
      {%- elif row['not_number'] == 0 -%}{%- set data_type = 'decimal(38,' ~ [row['max_scale'] | int, 9] | max ~ ')' -%}
      {%- elif row['not_boolean'] == 0 -%}{%- set data_type = 'boolean' -%}
      {%- elif row['not_timestamptz'] == 0 -%}{%- set data_type = 'timestamp_ltz' if spark else 'timestamp with time zone' -%}
      {%- elif row['not_timestamp'] == 0 -%}{%- set data_type = 'timestamp_ntz' if spark else 'timestamp' -%}
      {%- elif row['not_date'] == 0 -%}{%- set data_type = 'date' -%}
      {%- else -%}{%- set data_type = 'string' if spark else 'varchar' -%}
      {%- endif -%}
      {%- do found.append((name, data_type)) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(found) }}
{% endmacro %}
