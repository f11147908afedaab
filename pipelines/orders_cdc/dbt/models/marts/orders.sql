-- The current state of every order: its latest event by capture order; a delete leaves no row.
-- Each run rebuilds the orders touched by new events and writes only those whose state differs
-- from the table (README.md, "orders").
{{ config(tombstone_column='is_deleted') }}
{%- set columns = staged_order_columns(ref('stg_ecomm_audit_log_dml_orders_flattened')) | map(attribute=0) | list %}
{%- set capture = ['event_position', 'ingested_at'] %}

with events as (
    select * from {{ ref('stg_ecomm_audit_log_dml_orders_flattened') }}
),

touched as (
    {{ lakehouse.cdc_touched_keys('events', 'order_id', 'event_position', 'ingested_at') }}
),

state as (
    {{ lakehouse.cdc_latest_state(
        'events', key='order_id', position_column='change_order', operation_column='audit_operation',
        columns=columns, delete_operations=['D'], keys='touched', carry=capture,
    ) }}
)

{{ lakehouse.cdc_state_changes('state', key='order_id', columns=columns, keys='touched', carry=capture) }}
