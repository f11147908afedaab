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
            when not ({{ lakehouse.is_decimal_text('bid_price') }} and {{ lakehouse.is_decimal_text('ask_price') }})
                then 'non-numeric price'
            when cast(bid_price as decimal(18, 6)) <= 0
                or cast(ask_price as decimal(18, 6)) < cast(bid_price as decimal(18, 6)) then 'invalid bid/ask'
            when not {{ lakehouse.is_integer_text('avg_daily_volume') }}
                or cast(avg_daily_volume as decimal(20, 0)) <= 0 then 'invalid avg_daily_volume'
            when haircut_class is null or haircut_class not in ('A', 'B', 'C', 'D') then 'unknown haircut_class'
        end as invalid_reason
    from source
),

{{ lakehouse.judge_rows(
    'checked', columns,
    key=['instrument_id', 'as_of_date'],
    latest_first=['try_cast(published_at as timestamp) desc nulls last', '_batch_date desc', '_source_row desc'],
    duplicate_reason='duplicate instrument_id: superseded by a later record',
) }}

select * from judged
