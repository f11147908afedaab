-- Tiers and haircuts: pipelines/liquidity/README.md ("mart_liquidity_risk").
with positions as (
    select * from {{ ref('mart_positions') }}
    where {{ lakehouse.interval_filter('as_of_date') }}
),

market as (
    select
        instrument_id,
        as_of_date,
        haircut_class,
        mid_price,
        avg_daily_volume
    from {{ ref('stg_market_data') }}
    where {{ lakehouse.interval_filter('as_of_date') }}
),

measured as (
    select
        positions.as_of_date,
        positions.source_system,
        positions.position_id,
        positions.portfolio_id,
        positions.instrument_id,
        market.haircut_class,
        positions.notional_usd,
        market.mid_price,
        market.avg_daily_volume,
        cast(market.avg_daily_volume * market.mid_price as decimal(28, 6)) as adv_value_usd,
        cast(round(
            positions.notional_usd
            / (market.avg_daily_volume * market.mid_price * {{ var('adv_participation_rate') }}),
            4
        ) as decimal(18, 4)) as days_to_liquidate
    from positions
    left join market
        on positions.instrument_id = market.instrument_id
        and positions.as_of_date = market.as_of_date
),

tiered as (
    select
        *,
        case
            when haircut_class = 'A' and days_to_liquidate <= 1 then 'LEVEL_1'
            when haircut_class in ('A', 'B') and days_to_liquidate <= 5 then 'LEVEL_2A'
            when haircut_class in ('A', 'B', 'C') and days_to_liquidate <= 20 then 'LEVEL_2B'
            else 'ILLIQUID'
        end as liquidity_tier
    from measured
),

final as (
    select
        *,
        cast(case liquidity_tier
            when 'LEVEL_1' then 0.00
            when 'LEVEL_2A' then 0.15
            when 'LEVEL_2B' then 0.50
            else 1.00
        end as decimal(5, 2)) as haircut_pct
    from tiered
)

select
    *,
    cast(round(notional_usd * (1 - haircut_pct), 2) as decimal(18, 2)) as liquidity_adjusted_value_usd
from final
