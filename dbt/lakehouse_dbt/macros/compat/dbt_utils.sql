{#- dbt_utils' most used macros, same names, arguments and results as dbt_utils 1.x, for projects
    that cannot download the hub package: replace `dbt_utils.` by `lakehouse.` (or install the
    dbt_utils shim, compat_packages/dbt_utils, and change nothing). The mapping and the differences
    are in the package README ("dbt_utils and dbt_date"). Engine-specific SQL is dispatched per
    adapter (duckdb__ / spark__ / default__), as in engine.sql. -#}


{#- (internal) The argument must be a relation (ref(), source(), api.Relation), as dbt_utils requires. -#}
{% macro _compat_is_relation(obj, macro) %}
  {%- if not (obj is mapping and obj.get('metadata', {}).get('type', '').endswith('Relation')) -%}
    {%- do exceptions.raise_compiler_error(
        "lakehouse." ~ macro ~ ": expected a relation (ref(), source() or api.Relation.create()), got " ~ obj) -%}
  {%- endif -%}
{% endmacro %}


{#- (internal) An ephemeral model has no columns to read, unless it is a unit test's fixture,
    which has the columns of the relation it stands for (macros/unit_testing.sql). -#}
{% macro _compat_is_not_ephemeral(obj, macro) %}
  {%- if execute and obj.is_cte and not adapter.get_columns_in_relation(obj) -%}
    {%- do exceptions.raise_compiler_error(
        "lakehouse." ~ macro ~ " does not support ephemeral models (" ~ obj ~ "): its columns are not in the database") -%}
  {%- endif -%}
{% endmacro %}


{#- A hash of the fields (expressions), each cast to text, NULL as '_dbt_utils_surrogate_key_null_'
    (with var surrogate_key_treat_nulls_as_empty_strings: ''), joined by '-': md5 hex, 32 characters. -#}
{% macro generate_surrogate_key(field_list) %}
  {{ return(adapter.dispatch('generate_surrogate_key', 'lakehouse')(field_list)) }}
{% endmacro %}

{% macro default__generate_surrogate_key(field_list) -%}
  {%- set field_list = [field_list] if field_list is string else field_list -%}
  {%- set null_value = '' if var('surrogate_key_treat_nulls_as_empty_strings', false) else '_dbt_utils_surrogate_key_null_' -%}
  {%- set fields = [] -%}
  {%- for field in field_list -%}
    {%- do fields.append("coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '" ~ null_value ~ "')") -%}
    {%- if not loop.last %}{%- do fields.append("'-'") -%}{%- endif -%}
  {%- endfor -%}
  {{ dbt.hash(dbt.concat(fields)) }}
{%- endmacro %}


{#- The column names of a relation, less `except` (case-insensitive), in table order. -#}
{% macro get_filtered_columns_in_relation(from, except=[]) %}
  {%- do lakehouse._compat_is_relation(from, 'get_filtered_columns_in_relation') -%}
  {%- do lakehouse._compat_is_not_ephemeral(from, 'get_filtered_columns_in_relation') -%}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set excluded = except | map('lower') | list -%}
  {%- set columns = [] -%}
  {%- for column in adapter.get_columns_in_relation(from) if column.column | lower not in excluded -%}
    {%- do columns.append(column.column) -%}
  {%- endfor -%}
  {{ return(columns) }}
{% endmacro %}


{#- The columns of a relation as a select list, less `except`; optionally prefixed by
    `relation_alias.` and renamed prefix ~ column ~ suffix. `*` while dbt parses. -#}
{% macro star(from, relation_alias=False, except=[], prefix='', suffix='', quote_identifiers=True) %}
  {%- do lakehouse._compat_is_relation(from, 'star') -%}
  {%- do lakehouse._compat_is_not_ephemeral(from, 'star') -%}
  {%- if not execute -%}{{ return('*') }}{%- endif -%}
  {%- set columns = lakehouse.get_filtered_columns_in_relation(from, except) -%}
  {%- if columns | length == 0 -%}
    {%- if flags.WHICH == 'compile' -%}
      {{ return('*\n/* No columns were returned. Maybe the relation does not exist yet or all columns were excluded. This star is only output during dbt compile, and exists to keep SQL valid. */') }}
    {%- endif -%}
    {{ return('/* no columns returned from star() macro */') }}
  {%- endif -%}
  {%- for column in columns -%}
    {%- set name = adapter.quote(column) | trim if quote_identifiers else column | trim -%}
    {%- set renamed = adapter.quote(prefix ~ column ~ suffix) | trim if quote_identifiers else (prefix ~ column ~ suffix) | trim -%}
    {{ relation_alias ~ '.' if relation_alias }}{{ name }}{{ ' as ' ~ renamed if prefix != '' or suffix != '' }}{{ ',\n  ' if not loop.last }}
  {%- endfor -%}
{% endmacro %}


{#- UNION ALL of relations whose columns differ: every column of any of them (by name, first seen
    order; `include` or `exclude` restrict them), NULL where a relation lacks it, cast to its type
    (`column_override`: {name: type}); `source_column_name` says which relation a row came from
    (none: no such column); `where` filters every relation. -#}
{% macro union_relations(relations, column_override=none, include=[], exclude=[], source_column_name='_dbt_source_relation', where=none) %}
  {%- if exclude and include -%}
    {{ exceptions.raise_compiler_error("Both an exclude and include list were provided to the `union` macro. Only one is allowed") }}
  {%- endif -%}
  {%- if not execute -%}{{ return('') }}{%- endif -%}
  {%- set column_override = column_override if column_override is not none else {} -%}
  {%- set included = include | map('lower') | list -%}
  {%- set excluded = exclude | map('lower') | list -%}
  {%- set relation_columns = [] -%}
  {%- set superset = {} -%}
  {%- set order = [] -%}
  {%- for relation in relations -%}
    {%- do lakehouse._compat_is_relation(relation, 'union_relations') -%}
    {%- do lakehouse._compat_is_not_ephemeral(relation, 'union_relations') -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
      {%- if (exclude and column.column | lower in excluded) or (include and column.column | lower not in included) -%}
      {%- else -%}
        {%- do names.append(column.column) -%}
        {%- set stored = superset.get(column.column) -%}
        {%- if stored is none -%}
          {%- do superset.update({column.column: column}) -%}
          {%- do order.append(column.column) -%}
        {%- elif column.is_string() and stored.is_string() and column.string_size() > stored.string_size() -%}
          {%- do superset.update({column.column: column}) -%}
        {%- endif -%}
      {%- endif -%}
    {%- endfor -%}
    {%- do relation_columns.append(names) -%}
  {%- endfor -%}
  {%- if flags.WHICH in ['run', 'build'] and (include or exclude) and not order -%}
    {{ exceptions.raise_compiler_error("There were no columns found to union for relations " ~ relations | map(attribute='name') | join(', ')) }}
  {%- endif -%}
  {%- for relation in relations %}
    {%- set held = relation_columns[loop.index0] %}
    (
        select
            {%- if source_column_name is not none %}
            cast({{ dbt.string_literal(relation.render()) }} as {{ dbt.type_string() }}) as {{ source_column_name }},
            {%- endif %}
            {%- for name in order %}
            cast({{ adapter.quote(name) if name in held else 'null' }} as {{ column_override.get(name, superset[name].data_type) }}) as {{ superset[name].quoted }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ relation }}
        {%- if where %}
        where {{ where }}
        {%- endif %}
    )
    {%- if not loop.last %}

    union all
    {% endif -%}
  {%- endfor -%}
{% endmacro %}


{#- `(numerator) / nullif((denominator), 0)`: NULL instead of a division by zero. -#}
{% macro safe_divide(numerator, denominator) -%}
( {{ numerator }} ) / nullif( ( {{ denominator }} ), 0)
{%- endmacro %}

{#- Sums of expressions where NULL counts as 0. -#}
{% macro safe_add(field_list) -%}
  {%- if field_list is string -%}{{ exceptions.raise_compiler_error("safe_add: field_list must be a list") }}{%- endif -%}
  {%- set fields = [] -%}
  {%- for field in field_list -%}{%- do fields.append('coalesce(' ~ field ~ ', 0)') -%}{%- endfor -%}
  {{ fields | join(' +\n  ') }}
{%- endmacro %}

{% macro safe_subtract(field_list) -%}
  {%- if field_list is string -%}{{ exceptions.raise_compiler_error("safe_subtract: field_list must be a list") }}{%- endif -%}
  {%- set fields = [] -%}
  {%- for field in field_list -%}{%- do fields.append('coalesce(' ~ field ~ ', 0)') -%}{%- endfor -%}
  {{ fields | join(' -\n  ') }}
{%- endmacro %}


{#- `group by 1, 2, ..., n`. -#}
{% macro group_by(n) -%}
group by {% for i in range(1, n + 1) %}{{ i }}{{ ', ' if not loop.last }}{% endfor %}
{%- endmacro %}


{#- A text as an identifier: lower case, runs of spaces and dashes as one _, other characters
    than letters, digits and _ dropped, a leading _ when it starts with a digit. -#}
{% macro slugify(string) -%}
  {%- set string = modules.re.sub('[ -]+', '_', string | lower) -%}
  {%- set string = modules.re.sub('[^a-z0-9_]+', '', string) -%}
  {%- set string = modules.re.sub('^([0-9])', '_\\1', string) -%}
  {{ return(string) }}
{%- endmacro %}


{#- One aggregate per value: agg(case when column cmp 'value' then then_value else else_value end),
    named prefix ~ value ~ suffix (quoted, or slugified with quote_identifiers=False). -#}
{% macro pivot(column, values, alias=True, agg='sum', cmp='=', prefix='', suffix='', then_value=1, else_value=0, quote_identifiers=True, distinct=False) -%}
  {%- for value in values %}
  {{ agg }}(
    {%- if distinct %} distinct{% endif %}
    case when {{ column }} {{ cmp }} '{{ dbt.escape_single_quotes(value | string) }}' then {{ then_value }} else {{ else_value }} end
  )
    {%- if alias %} as {{ adapter.quote(prefix ~ value ~ suffix) if quote_identifiers else lakehouse.slugify(prefix ~ value ~ suffix) }}{% endif %}
    {{- ',' if not loop.last }}
  {%- endfor %}
{%- endmacro %}


{#- The distinct values of a column (most frequent first by default), queried when the model
    compiles, e.g. for pivot(). `default` while dbt parses, when the relation does not exist or the
    query returns nothing; without a default a missing relation is an error. -#}
{% macro get_column_values(table, column, order_by='count(*) desc', max_records=none, default=none, where=none) %}
  {%- if not execute -%}{{ return(default or []) }}{%- endif -%}
  {%- if table.is_cte -%}
    {{ exceptions.raise_compiler_error(
        "get_column_values() queries " ~ table ~ ", which is not in the database: an ephemeral model, or a unit test's "
        ~ "fixture (give the values there with overrides: {macros: {get_column_values: [...]}})") }}
  {%- endif -%}
  {%- if load_relation(table) is none -%}
    {%- if default is none -%}
      {{ exceptions.raise_compiler_error("In get_column_values(): relation " ~ table ~ " does not exist and no default value was provided.") }}
    {%- endif -%}
    {{ return(default) }}
  {%- endif -%}
  {%- set query -%}
    select {{ column }} as value
    from {{ table }}
    {%- if where is not none %}
    where {{ where }}
    {%- endif %}
    group by {{ column }}
    order by {{ order_by }}
    {%- if max_records is not none %}
    limit {{ max_records }}
    {%- endif %}
  {%- endset -%}
  {%- set values = run_query(query).columns[0].values() | list -%}
  {{ return(values if values else default) }}
{% endmacro %}


{#- The first value of the first row of a query, run when the model compiles; `default` when it
    returns nothing (or while dbt parses). -#}
{% macro get_single_value(query, default=none) %}
  {%- if not execute -%}{{ return(default) }}{%- endif -%}
  {%- set result = run_query(query) -%}
  {%- if result.rows | length == 0 -%}
    {%- if default is none -%}
      {{ exceptions.raise_compiler_error("get_single_value: the query returned no rows and no default was given:\n" ~ query) }}
    {%- endif -%}
    {{ return(default) }}
  {%- endif -%}
  {{ return(result.rows[0][0]) }}
{% endmacro %}


{#- The first row by `order_by` of each `partition_by` group of a relation (or CTE name), all its
    columns and only those. -#}
{% macro deduplicate(relation, partition_by, order_by) %}
  {{ return(adapter.dispatch('deduplicate', 'lakehouse')(relation, partition_by, order_by)) }}
{% endmacro %}

{% macro duckdb__deduplicate(relation, partition_by, order_by) -%}
select *
from {{ relation }}
qualify row_number() over (partition by {{ partition_by }} order by {{ order_by }}) = 1
{%- endmacro %}

{#- Spark has no QUALIFY and no `* except`: rank whole rows as structs. -#}
{% macro spark__deduplicate(relation, partition_by, order_by) -%}
select deduplicated.row.*
from (
    select
        struct(dedup_source.*) as row,
        row_number() over (partition by {{ partition_by }} order by {{ order_by }}) as dedup_rank
    from {{ relation }} as dedup_source
) as deduplicated
where deduplicated.dedup_rank = 1
{%- endmacro %}

{#- dbt_utils' default: a natural join on the row number (rows holding NULLs do not survive it on
    every engine: use an engine with its own variant where that matters). -#}
{% macro default__deduplicate(relation, partition_by, order_by) -%}
with row_numbered as (
    select
        _inner.*,
        row_number() over (partition by {{ partition_by }} order by {{ order_by }}) as rn
    from {{ relation }} as _inner
)
select distinct data.*
from {{ relation }} as data
natural join row_numbered
where row_numbered.rn = 1
{%- endmacro %}


{#- A relation of one integer column `generated_number`: 1 .. upper_bound. -#}
{% macro generate_series(upper_bound) -%}
{{ lakehouse.integer_series(1, upper_bound, 'generated_number') }}
{%- endmacro %}


{#- One row per `datepart` (second, minute, hour, day, week, month, quarter, year): start_date + k
    dateparts for k = 0, 1, ... while before end_date (excluded); both are SQL expressions. The column
    date_<datepart> is a date for day..year, a timestamp for second..hour. Each value is computed
    from start_date (2026-01-31 + 1 month = 2026-02-28, + 2 months = 2026-03-31). -#}
{% macro date_spine(datepart, start_date, end_date) %}
  {%- set dateparts = ['second', 'minute', 'hour', 'day', 'week', 'month', 'quarter', 'year'] -%}
  {%- if datepart | lower not in dateparts -%}
    {{ exceptions.raise_compiler_error("date_spine: datepart '" ~ datepart ~ "' is not one of " ~ dateparts | join(', ')) }}
  {%- endif -%}
  {%- set datepart = datepart | lower -%}
  {%- set value_type = 'timestamp' if datepart in ['second', 'minute', 'hour'] else 'date' -%}
  {{ return(adapter.dispatch('date_spine', 'lakehouse')(datepart, start_date, end_date, value_type)) }}
{% endmacro %}

{#- DuckDB's range() over timestamps adds the interval to the previous value (Jan 31, Feb 28,
    Mar 28, ...): count steps instead, each from the start. -#}
{% macro duckdb__date_spine(datepart, start_date, end_date, value_type) -%}
  {%- set unit, factor = {'week': ('day', 7), 'quarter': ('month', 3)}.get(datepart, (datepart, 1)) -%}
select cast(spine_value as {{ value_type }}) as date_{{ datepart }}
from (
    select cast({{ start_date }} as timestamp) + interval (spine_index * {{ factor }}) {{ unit }} as spine_value
    from (
        select unnest(range(0, date_diff('{{ datepart }}', cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp)) + 1)) as spine_index
    ) as spine_steps
) as spine
where spine_value < cast({{ end_date }} as timestamp)
{%- endmacro %}

{% macro spark__date_spine(datepart, start_date, end_date, value_type) -%}
select cast(spine_value as {{ value_type }}) as date_{{ datepart }}
from (
    select timestampadd({{ datepart | upper }}, spine_index, cast({{ start_date }} as timestamp)) as spine_value
    from (
        select explode(sequence(0, timestampdiff({{ datepart | upper }}, cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp)) + 1)) as spine_index
    ) as spine_steps
    where spine_index >= 0
) as spine
where spine_value < cast({{ end_date }} as timestamp)
{%- endmacro %}


{#- Relations of a schema (and table) LIKE pattern, as a list for union_relations. -#}
{% macro get_relations_by_pattern(schema_pattern, table_pattern, exclude='', database=target.database) %}
  {{ return(adapter.dispatch('get_relations_by_pattern', 'lakehouse')(schema_pattern, table_pattern, exclude, database)) }}
{% endmacro %}

{% macro duckdb__get_relations_by_pattern(schema_pattern, table_pattern, exclude, database) %}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set query -%}
    select distinct table_schema, table_name, table_type
    from system.information_schema.tables
    where lower(table_catalog) = lower('{{ database }}')
      and table_schema ilike '{{ schema_pattern }}'
      and table_name ilike '{{ table_pattern }}'
      and table_name not ilike '{{ exclude }}'
    order by 1, 2
  {%- endset -%}
  {%- set relations = [] -%}
  {%- for row in run_query(query).rows -%}
    {%- do relations.append(api.Relation.create(database=database, schema=row[0], identifier=row[1], type='table')) -%}
  {%- endfor -%}
  {{ return(relations) }}
{% endmacro %}

{% macro spark__get_relations_by_pattern(schema_pattern, table_pattern, exclude, database) %}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- if '%' in schema_pattern or '_' in schema_pattern -%}
    {{ exceptions.raise_compiler_error("get_relations_by_pattern on Spark: give the schema by name (" ~ schema_pattern ~ "), only the table is a pattern") }}
  {%- endif -%}
  {%- set relations = [] -%}
  {%- set like = table_pattern | replace('%', '*') | replace('_', '?') -%}
  {%- for row in run_query("show tables in " ~ schema_pattern ~ " like '" ~ like ~ "'").rows -%}
    {%- if not exclude or not modules.re.fullmatch(exclude | lower | replace('%', '.*') | replace('_', '.'), row[1] | lower) -%}
      {%- do relations.append(api.Relation.create(schema=schema_pattern, identifier=row[1], type='table')) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(relations) }}
{% endmacro %}
