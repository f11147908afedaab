-- The landed change events that can be applied: one per event (the first landed copy), of a known
-- operation and table, with a row. Rules: pipelines/orders_cdc/README.md.
with

{{ judge_landed_events(
    source('ecomm', 'audit_log_dml'),
    lakehouse.cdc_new_rows('event_position', 'ingested_at', relation_alias='landed'),
) }}

select
    -- event
    event_position,
    {{ change_order() }} as change_order,
    audit_event_id,
    audit_operation,
    audit_timestamp,

    -- row
    tbl_schema,
    tbl_name,
    raw_data,

    -- lineage
    capture_mode,
    ingested_at
from judged_landing
where rejection_reason is null
