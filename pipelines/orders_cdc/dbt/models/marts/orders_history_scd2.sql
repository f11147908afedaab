-- Every version of every order (SCD2): one row per applied event, valid_from/valid_to, is_current,
-- is_deleted. Each run rebuilds the orders touched by new events from their whole history.
{%- set columns = staged_order_columns(ref('stg_ecomm_audit_log_dml_orders_flattened')) | map(attribute=0) | list %}

with events as (
    select * from {{ ref('stg_ecomm_audit_log_dml_orders_flattened') }}
),

touched as (
    {{ lakehouse.cdc_touched_keys('events', 'order_id', 'event_position', 'ingested_at') }}
)

{{ lakehouse.cdc_scd2(
    'events', key='order_id', position_column='change_order', operation_column='audit_operation',
    timestamp_column='audit_timestamp', columns=columns, delete_operations=['D'], keys='touched',
    carry=['event_position', 'audit_timestamp', 'ingested_at'],
) }}
