{#- Change data capture: from a log of change events to the current state and its SCD2 history.

    Any pipeline whose events have a key, a position (a column whose order is the order in which
    each key's changes happened: a commit LSN, or an audit trigger's sequence id, NOT a transaction id,
    since an older transaction can change a row after a newer one committed; see orders_cdc's
    change_order) and an operation column (delete operations: 'D' by default) can use these. The rules, which make the result
    independent of how the events were cut into batches:
    - The latest event of a key by position wins; a delete as the latest event means "no row".
    - Events are never applied one batch after another: every key touched by new events is rebuilt
      from its WHOLE event history, so a batch holding I, U and D of one key, a delete that arrives
      before its update, or an old event that lands late all end in the same state. Rebuilding a
      key again is idempotent, so a run that re-touches keys changes nothing.
    - "New" means landed after what the target already holds (cdc_new_rows): position greater than
      the target's highest, or arrival (landing time) later than its latest. The position finds
      every event of a source whose positions grow; the arrival also finds an event landed late
      with an old position.

    The current state, with delete semantics (incremental, delete+insert with a tombstone column):

      {{ config(materialized='incremental', incremental_strategy='delete+insert',
                unique_key='order_id', tombstone_column='is_deleted') }}
      with events as (select * from {{ ref('stg_order_events') }}),
      touched as ({{ lakehouse.cdc_touched_keys('events', 'order_id', 'event_position', 'ingested_at') }}),
      state as (
          {{ lakehouse.cdc_latest_state('events', key='order_id', position_column='event_position',
                                        operation_column='op', columns=['order_id', 'status', 'amount'],
                                        keys='touched', carry=['event_position', 'ingested_at']) }}
      )
      {{ lakehouse.cdc_state_changes('state', key='order_id', columns=['order_id', 'status', 'amount'],
                                     keys='touched', carry=['event_position', 'ingested_at']) }}

    Only keys with new events (cdc_touched_keys, from the position and arrival the table carries)
    are rebuilt, and cdc_state_changes compares their latest state with the table and returns only
    the keys that differ (deleted keys as tombstones), so a run with nothing new writes nothing, and
    a failed, skipped or repeated run needs no bookkeeping. Without keys= and carry= every key is
    compared: slower (a pass over all events and the whole table), but the table then needs no
    columns beyond the source's.

    The SCD2 history (incremental, delete+insert on the key: a touched key's versions are replaced):

      {{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='order_id') }}
      with events as (select * from {{ ref('stg_order_events') }}),
      touched as ({{ lakehouse.cdc_touched_keys('events', 'order_id', 'event_position', 'ingested_at') }})
      {{ lakehouse.cdc_scd2('events', key='order_id', position_column='event_position', operation_column='op',
                            timestamp_column='changed_at', columns=['order_id', 'status', 'amount'],
                            keys='touched', carry=['ingested_at']) }}

    One row per event: valid_from (the event's timestamp, never before the previous version's),
    valid_to (the next version's valid_from; NULL for the current one), is_current (the key's latest
    event), is_deleted (a delete: the row as it was deleted). Intervals [valid_from, valid_to) of a key
    never overlap, and every key has exactly one current row; the key exists iff that row is not
    deleted. Its position and arrival columns make the next run's watermark exact.
-#}


{#- A where-clause predicate: the rows of the model's input that the target ({{ this }}) does not
    hold yet. Everything on a first run, a --full-refresh, or while the target has no position yet
    (empty, a column just added, or a table built before it had them). The watermarks may
    lag (a key whose latest event is a delete leaves no row in a current-state table): that only
    re-touches keys, which the rules below make harmless. -#}
{% macro cdc_new_rows(position_column, arrival_column=none, relation_alias=none) %}
  {%- set held = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list if is_incremental() else [] -%}
  {%- if not is_incremental() or position_column | lower not in held or (arrival_column and arrival_column | lower not in held) -%}
    1 = 1
  {%- else -%}
    {%- set prefix = relation_alias ~ '.' if relation_alias else '' -%}
    ((select max({{ position_column }}) from {{ this }}) is null
     or {{ prefix }}{{ position_column }} > (select max({{ position_column }}) from {{ this }})
     {%- if arrival_column %}
     or {{ prefix }}{{ arrival_column }} > (select max({{ arrival_column }}) from {{ this }})
     {%- endif %})
  {%- endif -%}
{% endmacro %}


{#- The keys with rows the target does not hold yet (every key on a full build), as a query. -#}
{% macro cdc_touched_keys(events, key, position_column, arrival_column=none) %}
  {%- set keys = [key] if key is string else key -%}
select distinct {{ keys | join(', ') }}
from {{ events }}
where {{ lakehouse.cdc_new_rows(position_column, arrival_column) }}
{% endmacro %}


{#- (internal) "<alias>.k1 = <other>.k1 and ..." -#}
{% macro _cdc_key_match(keys, left, right) -%}
  {%- for k in keys -%}{{ left }}.{{ k }} = {{ right }}.{{ k }}{{ ' and ' if not loop.last }}{%- endfor -%}
{%- endmacro %}


{#- The latest event of every key (of `keys`, a query or CTE giving key columns, when given) by
    `position_column`, as `columns`, then the `carry` columns (e.g. position and arrival, for
    cdc_new_rows), then `tombstone_column`: true when that event is a delete. -#}
{% macro cdc_latest_state(events, key, position_column, operation_column, columns, delete_operations=['D'],
                          keys=none, tombstone_column='is_deleted', carry=[]) %}
  {%- set key_columns = [key] if key is string else key -%}
  {%- set output = key_columns + (columns | reject('in', key_columns) | list) + (carry | reject('in', columns) | list) -%}
select
    {%- for column in output %}
    {{ column }},
    {%- endfor %}
    {{ operation_column }} in ('{{ delete_operations | join("', '") }}') as {{ tombstone_column }}
from (
    select
        cdc_events.*,
        row_number() over (
            partition by {% for k in key_columns %}cdc_events.{{ k }}{{ ', ' if not loop.last }}{% endfor %}
            order by cdc_events.{{ position_column }} desc
        ) as cdc_recency
    from {{ events }} as cdc_events
    {%- if keys %}
    where exists (select 1 from {{ keys }} as cdc_keys where {{ lakehouse._cdc_key_match(key_columns, 'cdc_keys', 'cdc_events') }})
    {%- endif %}
) as cdc_ranked
where cdc_recency = 1
{% endmacro %}


{#- The rows of `state` (cdc_latest_state's output) that change the target ({{ this }}): keys that
    are new or differ in any column, and tombstones for keys the target holds that are deleted (or
    gone from the state). Everything on a full build: the tombstones are dropped by the write.
    A column the target does not have yet counts as a difference where it is not null, so a new
    column reaches exactly the rows that have a value for it (schema evolution adds it).
    `carry` must be cdc_latest_state's: those columns are written, never compared.
    With `keys` (the query or CTE `state` was restricted to) only those keys are compared: a key
    outside them is not gone, just untouched. -#}
{% macro cdc_state_changes(state, key, columns, tombstone_column='is_deleted', keys=none, carry=[]) %}
  {%- set key_columns = [key] if key is string else key -%}
  {%- set output = key_columns + (columns | reject('in', key_columns) | list) + (carry | reject('in', columns) | list) -%}
  {%- if not is_incremental() -%}
select * from {{ state }}
  {%- else -%}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- set compared = columns | reject('in', key_columns) | list %}
select cdc_state.*
from {{ state }} as cdc_state
left join {{ this }} as cdc_target on {{ lakehouse._cdc_key_match(key_columns, 'cdc_state', 'cdc_target') }}
where
    (cdc_target.{{ key_columns[0] }} is null and not cdc_state.{{ tombstone_column }})
    or (cdc_target.{{ key_columns[0] }} is not null and cdc_state.{{ tombstone_column }})
    or (cdc_target.{{ key_columns[0] }} is not null and not cdc_state.{{ tombstone_column }} and (
        false
        {%- for column in compared %}
        {%- if column | lower in existing %}
        or cdc_state.{{ column }} is distinct from cdc_target.{{ column }}
        {%- else %}
        or cdc_state.{{ column }} is not null
        {%- endif %}
        {%- endfor %}
    ))

union all

select
    {%- for column in output %}
    {% if column in key_columns %}cdc_target.{{ column }}{% else %}null{% endif %} as {{ column }},
    {%- endfor %}
    true as {{ tombstone_column }}
from {{ this }} as cdc_target
where not exists (select 1 from {{ state }} as cdc_state where {{ lakehouse._cdc_key_match(key_columns, 'cdc_state', 'cdc_target') }})
    {%- if keys %}
  and exists (select 1 from {{ keys }} as cdc_keys where {{ lakehouse._cdc_key_match(key_columns, 'cdc_keys', 'cdc_target') }})
    {%- endif %}
  {%- endif %}
{% endmacro %}


{#- Every version of every key of `keys` (a query or CTE of key columns; every key when none): one
    row per event, `columns` as the event carries them, then valid_from, valid_to, is_current,
    is_deleted, the position and operation columns, and the `carry` columns (e.g. the arrival
    column, for cdc_new_rows). -#}
{% macro cdc_scd2(events, key, position_column, operation_column, timestamp_column, columns, delete_operations=['D'],
                  keys=none, carry=[]) %}
  {%- set key_columns = [key] if key is string else key -%}
  {%- set output = key_columns + (columns | reject('in', key_columns) | list) -%}
  {%- set lineage = [position_column, operation_column] + (carry | reject('in', [position_column, operation_column]) | list) -%}
  {%- set partition -%}partition by {{ key_columns | join(', ') }} order by {{ position_column }}{%- endset %}
select
    {%- for column in output %}
    {{ column }},
    {%- endfor %}
    cdc_valid_from as valid_from,
    lead(cdc_valid_from) over ({{ partition }}) as valid_to,
    lead({{ position_column }}) over ({{ partition }}) is null as is_current,
    {{ operation_column }} in ('{{ delete_operations | join("', '") }}') as is_deleted,
    {{ lineage | join(',\n    ') }}
from (
    select
        cdc_events.*,
        -- A timestamp is a clock reading: never let a version start before the one it replaces.
        max(cdc_events.{{ timestamp_column }}) over (
            partition by {% for k in key_columns %}cdc_events.{{ k }}{{ ', ' if not loop.last }}{% endfor %}
            order by cdc_events.{{ position_column }}
            rows between unbounded preceding and current row
        ) as cdc_valid_from
    from {{ events }} as cdc_events
    {%- if keys %}
    where exists (select 1 from {{ keys }} as cdc_keys where {{ lakehouse._cdc_key_match(key_columns, 'cdc_keys', 'cdc_events') }})
    {%- endif %}
) as cdc_history
{% endmacro %}


{#- An enforced contract that lets a model add columns: for contracted models configured with
    on_schema_change='append_new_columns' (the value dbt requires of incremental models with a
    contract that may grow), every declared column must be there with its declared type, and
    columns beyond the declared ones are allowed (logged); any other contracted model gets dbt's
    own check, unchanged. This is how a staging model keeps an enforced contract while a column
    added in the source reaches it without a hand edit: the contract guarantees the declared
    columns, and new ones only ever come after them.
    A project turns it on with one line in its macros/ (dbt lets only the root project override a
    dbt-namespace macro):
      {% macro duckdb__get_assert_columns_equivalent(sql) %}{{ return(lakehouse.assert_contract_columns(sql)) }}{% endmacro %}
    (and the same line with spark__ for the Spark engine). -#}
{% macro assert_contract_columns(sql) %}
  {%- if config.get('on_schema_change') != 'append_new_columns' -%}
    {{ return(dbt.assert_columns_equivalent(sql)) }}
  {%- endif -%}
  {%- set user_defined_columns = model['columns'] -%}
  {%- if not user_defined_columns -%}
    {{ exceptions.raise_contract_error([], []) }}
  {%- endif -%}
  {%- set sql_columns = dbt.format_columns(dbt.get_column_schema_from_query(sql, config.get('sql_header', none))) -%}
  {%- set yaml_columns = dbt.format_columns(dbt.get_column_schema_from_query(dbt.get_empty_schema_sql(user_defined_columns))) -%}
  {%- set sql_by_name = {} -%}
  {%- for column in sql_columns -%}{%- do sql_by_name.update({column['name'] | lower: column}) -%}{%- endfor -%}
  {%- for yaml_column in yaml_columns -%}
    {%- set found = sql_by_name.get(yaml_column['name'] | lower) -%}
    {%- if found is none or found['formatted'] != yaml_column['formatted'] -%}
      {%- do exceptions.raise_contract_error(yaml_columns, sql_columns) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set declared = yaml_columns | map(attribute='name') | map('lower') | list -%}
  {%- set added = sql_columns | rejectattr('name', 'in', declared) | map(attribute='formatted') | list -%}
  {%- if added -%}
    {%- do log(model.name ~ ": columns beyond the contract, appended by schema evolution: " ~ added | join(', '), info=True) -%}
  {%- endif -%}
{% endmacro %}
