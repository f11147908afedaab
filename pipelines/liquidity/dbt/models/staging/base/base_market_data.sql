-- Every raw market data row with the reason it cannot be staged (NULL when it can).
{%- set columns = [
    'instrument_id', 'as_of_date', 'bid_price', 'ask_price', 'avg_daily_volume', 'haircut_class',
    'published_at', '_batch_date', '_source_row', '_ingested_at',
] %}

with source as (
    select * from {{ source('market_feed', 'market_data') }}
),

checked as (
    select
        *,
        case
            when {{ lakehouse.is_blank('instrument_id') }} then 'missing instrument_id'
            when {{ lakehouse.parse_date('as_of_date') }} is null then 'unparsable as_of_date'
            when not ({{ lakehouse.is_decimal_text('bid_price') }} and {{ lakehouse.is_decimal_text('ask_price') }}) then 'non-numeric price'
            when cast(bid_price as decimal(18, 6)) <= 0
                or cast(ask_price as decimal(18, 6)) < cast(bid_price as decimal(18, 6)) then 'invalid bid/ask'
            when not {{ lakehouse.is_integer_text('avg_daily_volume') }}
                or cast(avg_daily_volume as decimal(20, 0)) <= 0 then 'invalid avg_daily_volume'
            when haircut_class is null or haircut_class not in ('A', 'B', 'C', 'D') then 'unknown haircut_class'
        end as invalid_reason
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by instrument_id, as_of_date
            order by try_cast(published_at as timestamp) desc nulls last, _batch_date desc, _source_row desc
        ) as recency_rank
    from checked
    where invalid_reason is null
),

judged as (
    select {{ columns | join(', ') }}, invalid_reason as rejection_reason
    from checked
    where invalid_reason is not null

    union all

    select
        {{ columns | join(', ') }},
        case when recency_rank > 1 then 'duplicate instrument_id: superseded by a later record' end as rejection_reason
    from ranked
)

select * from judged
