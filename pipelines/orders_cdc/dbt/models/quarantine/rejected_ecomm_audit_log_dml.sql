-- Every landed row that was not applied, as landed, with the first rule it breaks (README.md): the
-- rows landed since the last rejected one that are not staged order events. Landed = applied
-- (stg_ecomm_audit_log_dml_orders_flattened) + quarantined (here), row for row.
{%- set flattened = ref('stg_ecomm_audit_log_dml_orders_flattened') -%}
{%- set columns = staged_order_columns(flattened) -%}
{%- set is_new -%}
    {{ lakehouse.cdc_new_rows('event_position', 'ingested_at', relation_alias='landed') }}
    and not exists (
        select 1 from {{ flattened }} as staged
        where staged.event_position = landed.event_position and staged.ingested_at = landed.ingested_at
    )
{%- endset %}

with

{{ judge_landed_events(source('ecomm', 'audit_log_dml'), is_new) }},

judged as (
    select
        {{ landed_columns() | join(', ') }},
        coalesce(rejection_reason, {{ order_rejection_reason('raw_data', columns) }}) as rejection_reason
    from judged_landing
)

select * from judged
where rejection_reason is not null
