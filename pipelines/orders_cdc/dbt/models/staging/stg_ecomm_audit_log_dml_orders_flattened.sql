-- Order events with the row as typed columns. The columns are the contract's, then any column the
-- source added since (schema evolution: no hand edit); an event whose row has no order_id or a value
-- that does not read exactly as its column's type goes to quarantine. Rules: README.md.
{%- set events_sql -%}
    select * from {{ ref('stg_ecomm_audit_log_dml') }}
    where tbl_schema = 'public' and tbl_name = 'orders'
        and {{ lakehouse.cdc_new_rows('event_position', 'ingested_at') }}
{%- endset -%}
{%- set columns = flattened_order_columns(events_sql) %}

with events as (
    {{ events_sql }}
),

checked as (
    select
        *,
        {{ order_rejection_reason('raw_data', columns) }} as rejection_reason
    from events
),

flattened as (
    select
        -- event
        event_position,
        change_order,
        audit_operation,
        audit_timestamp,
        ingested_at,

        -- the order as the event carries it (the deleted row for a D)
    {%- for name, data_type in columns %}
        {{ lakehouse.json_value('raw_data', name, data_type) }} as {{ name }}{{ ',' if not loop.last }}
    {%- endfor %}
    from checked
    where rejection_reason is null
)

select * from flattened
