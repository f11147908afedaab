{#- The shop database's change events as capture lands them in raw.audit_log_dml: which ones can be
    staged, and how an order is read from an event (rules: pipelines/orders_cdc/README.md). -#}

{#- The tables whose changes this pipeline applies; events of any other table are quarantined. -#}
{% macro captured_tables() %}{{ return(['public.orders']) }}{% endmacro %}

{#- The columns of raw.audit_log_dml as capture lands them (lakehouse.cdc.checkpoint.LANDING_SCHEMA). -#}
{% macro landed_columns() %}{{ return([
    'event_position', 'audit_event_id', 'audit_operation', 'audit_timestamp', 'tbl_schema', 'tbl_name',
    'raw_data', 'capture_mode', 'ingested_at',
]) }}{% endmacro %}

{#- What every staged order event carries besides the order's own columns. -#}
{% macro order_event_envelope() %}{{ return(['event_position', 'change_order', 'audit_operation', 'audit_timestamp', 'ingested_at']) }}{% endmacro %}

{#- The order in which an order's changes happened, which decides the latest event of an order.
    audit_log mode: the trigger's audit_event_id. Writes to one row are serialized by its row lock
    and the id is drawn as each statement runs, so ids follow the true order of a row's changes;
    event_position starts with the writing transaction's id instead (what capture needs to page
    safely), and a transaction with a lower id can change a row after a higher one committed.
    logical mode: event_position itself (commit LSN + sequence), the order of commits. -#}
{% macro change_order() -%}
case
    when audit_event_id is not null then lpad(cast(audit_event_id as string), 20, '0')
    else event_position
end
{%- endmacro %}


{#- CTEs `landed` ... `judged_landing`: every landed row for which `is_new` holds (a predicate over
    the columns of `landed`), with the first rule it breaks as rejection_reason (NULL: stage it).
    An event is identified by its event_position (in audit_log mode: writing transaction + audit
    event id; in logical mode: commit LSN + sequence): the copy landed first is the event, every
    later copy is a duplicate, whenever it arrives. -#}
{% macro judge_landed_events(landed_relation, is_new) %}
landed as (
    select * from {{ landed_relation }}
),

candidates as (
    select * from landed where {{ is_new }}
),

first_landed as (
    -- When each candidate's event was first landed, by this run or before.
    select event_position, min(ingested_at) as first_ingested_at
    from landed
    where event_position in (select event_position from candidates)
    group by event_position
),

copies as (
    select
        candidates.*,
        first_landed.first_ingested_at,
        row_number() over (
            partition by candidates.event_position
            order by candidates.ingested_at, candidates.audit_event_id, candidates.audit_operation, candidates.raw_data
        ) as copy_rank
    from candidates
    left join first_landed on candidates.event_position = first_landed.event_position
),

judged_landing as (
    select
        {{ landed_columns() | join(', ') }},
        case
            when event_position is null then 'missing event_position'
            when ingested_at > first_ingested_at or copy_rank > 1 then 'duplicate event id'
            when audit_operation is null or audit_operation not in ('I', 'U', 'D') then 'unknown operation'
            when tbl_schema is null or tbl_name is null
                or concat(tbl_schema, '.', tbl_name) not in ('{{ captured_tables() | join("', '") }}') then 'unknown table'
            when not {{ lakehouse.json_is_object('raw_data') }} then 'malformed raw_data'
        end as rejection_reason
    from copies
)
{% endmacro %}


{#- The first rule an orders event breaks, NULL when it breaks none: its row has no order_id, or a
    value that does not read exactly as its column's type. `columns`: [(name, type)] in column order. -#}
{% macro order_rejection_reason(json_column, columns) %}
case
        when {{ lakehouse.json_text(json_column, 'order_id') }} is null then 'missing order_id'
        {%- for name, data_type in columns %}
        when not {{ lakehouse.json_value_fits(json_column, name, data_type) }} then 'uncastable {{ name }} as {{ data_type | lower }}'
        {%- endfor %}
    end
{%- endmacro %}


{#- The order columns of stg_ecomm_audit_log_dml_orders_flattened, as [(name, type)]: the ones its
    contract declares, then the ones schema evolution added to the table, then the ones first seen
    in `events_sql` (typed from their values, lakehouse.json_infer_columns). Call it from that model. -#}
{% macro flattened_order_columns(events_sql) %}
  {%- set envelope = order_event_envelope() -%}
  {%- set columns = [] -%}
  {%- for column in model.columns.values() if column.name not in envelope -%}
    {%- do columns.append((column.name, column.data_type)) -%}
  {%- endfor -%}
  {%- if execute and is_incremental() -%}
    {%- set known = columns | map(attribute=0) | list + envelope -%}
    {%- for column in adapter.get_columns_in_relation(this) if column.name not in known -%}
      {%- do columns.append((column.name, column.dtype | lower)) -%}
    {%- endfor -%}
  {%- endif -%}
  {%- set known = columns | map(attribute=0) | list + envelope -%}
  {%- set added = lakehouse.json_infer_columns(events_sql, 'raw_data', 'event_position', known) -%}
  {%- if added -%}
    {%- do log(model.name ~ ": new columns in the source, added by schema evolution: " ~ added | map('join', ' ') | join(', '), info=True) -%}
  {%- endif -%}
  {{ return(columns + added) }}
{% endmacro %}


{#- The order columns of the staged events (`flattened`: a ref to the flattened model), as
    [(name, type)] in table order; empty while dbt parses. -#}
{% macro staged_order_columns(flattened) %}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set envelope = order_event_envelope() -%}
  {%- set columns = [] -%}
  {%- for column in adapter.get_columns_in_relation(flattened) if column.name not in envelope -%}
    {%- do columns.append((column.name, column.dtype | lower)) -%}
  {%- endfor -%}
  {{ return(columns) }}
{% endmacro %}
