{{ config(unique_key=['instrument_id', 'as_of_date']) }}

with validated as (
    select * from {{ ref('base_market_data') }}
    where rejection_reason is null
        and {{ lakehouse.interval_filter('_batch_date') }}
),

renamed as (
    select
        -- ids
        instrument_id,
        haircut_class,

        -- prices and depth
        cast(bid_price as decimal(18, 6)) as bid_price,
        cast(ask_price as decimal(18, 6)) as ask_price,
        cast((cast(bid_price as decimal(18, 6)) + cast(ask_price as decimal(18, 6))) / 2 as decimal(18, 6)) as mid_price,
        cast(avg_daily_volume as bigint) as avg_daily_volume,

        -- dates
        {{ lakehouse.parse_date('as_of_date') }} as as_of_date,
        cast(published_at as timestamp) as published_at,

        -- lineage
        _batch_date
    from validated
)

select * from renamed
