-- The current state of every order: its latest event by capture order; a delete leaves no row.
-- Each run writes only the orders whose state differs from the table (README.md, "orders").
{{ config(tombstone_column='is_deleted') }}
{%- set columns = staged_order_columns(ref('stg_ecomm_audit_log_dml_orders_flattened')) | map(attribute=0) | list %}

with events as (
    select * from {{ ref('stg_ecomm_audit_log_dml_orders_flattened') }}
),

state as (
    {{ lakehouse.cdc_latest_state(
        'events', key='order_id', position_column='change_order', operation_column='audit_operation',
        columns=columns, delete_operations=['D'],
    ) }}
)

{{ lakehouse.cdc_state_changes('state', key='order_id', columns=columns) }}
