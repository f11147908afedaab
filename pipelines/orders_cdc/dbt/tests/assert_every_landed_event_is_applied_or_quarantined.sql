-- Landed = applied + quarantined, row for row: every row of raw.audit_log_dml is a staged order
-- event or quarantined, never both and never twice.
with landed as (
    select
        event_position,
        ingested_at
    from {{ source('ecomm', 'audit_log_dml') }}
),

accounted as (
    select
        event_position,
        ingested_at,
        'applied' as outcome
    from {{ ref('stg_ecomm_audit_log_dml_orders_flattened') }}
    union all
    select
        event_position,
        ingested_at,
        'quarantined' as outcome
    from {{ ref('rejected_ecomm_audit_log_dml') }}
),

landed_copies as (
    select
        event_position,
        ingested_at,
        count(*) as copies
    from landed
    group by event_position, ingested_at
),

accounted_copies as (
    select
        event_position,
        ingested_at,
        count(*) as copies
    from accounted
    group by event_position, ingested_at
)

select
    coalesce(landed_copies.event_position, accounted_copies.event_position) as event_position,
    landed_copies.copies as landed,
    accounted_copies.copies as accounted
from landed_copies
full outer join accounted_copies
    on landed_copies.event_position is not distinct from accounted_copies.event_position
    and landed_copies.ingested_at is not distinct from accounted_copies.ingested_at
where landed_copies.copies is distinct from accounted_copies.copies
